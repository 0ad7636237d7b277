"""VS Code's prompt-file text, `${input:name}` placeholders and all, as the store's Jinja and back.

A `.prompt.md` body is not Jinja: VS Code sends it as written, except that it asks for each
`${input:name}` / `${input:name:placeholder}` and puts the answer in its place (and fills its
own `${selection}`, `${file}`, `${workspaceFolder}`, ... from the editor). So in the store:

- `${input:name...}` becomes the variable `{{ name }}` (a name Jinja cannot spell, such as
  `feature-name`, becomes `feature_name`);
- everything else is literal text: a run holding `{{`, `{%` or `{#` (a code sample, a GitHub
  Actions `${{ github.token }}`, a `{{step-name}}`) is wrapped in `{% raw %}...{% endraw %}`,
  so it renders to exactly its bytes and declares no variable;
- VS Code's other `${...}` variables stay text: PromStack has no editor to fill them from.

A file opts in to Jinja with `template_format: jinja2` in its front matter: its body is then the
store's template as it is (`${input:...}` still becomes a variable).

`to_text` is the way back for a write-back: the template of a version saved through the CLI,
SDK or MCP, in the file's syntax; Jinja that VS Code would send as text is refused with a
sentence, never written as something that means another thing.
"""

from __future__ import annotations

import ast
import keyword
import re

from jinja2 import Environment
from jinja2.exceptions import TemplateSyntaxError

from .common import FormatError

INPUT = re.compile(r"\$\{input:([^}:\s]+)(?::([^}]*))?\}")
# GitHub Models fills `{{key}}` for each key of a test case, by plain replacement: no spaces, no
# expressions, no tags.
GITHUB = re.compile(r"\{\{([^{}\s]+)\}\}")
_DELIMITER = re.compile(r"\{[{%#]")
_ENDRAW = re.compile(r"\{%[-+]?\s*endraw")
_IDENT = re.compile(r"[A-Za-z_]\w*\Z")
_JINJA_WORDS = {"true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if",
                "else", "loop", "self", "range", "dict", "lipsum", "cycler", "joiner", "namespace"}
_lexer = Environment(keep_trailing_newline=True)

JINJA_KEY = "template_format"
JINJA_VALUES = ("jinja2", "jinja")


def variable(name: str) -> str:
    """The store's variable for an `${input:name}`."""
    if _IDENT.match(name) and not keyword.iskeyword(name) and name not in _JINJA_WORDS:
        return name
    out = re.sub(r"\W", "_", name)
    if not out[:1].isalpha() and out[:1] != "_" or keyword.iskeyword(out) or out in _JINJA_WORDS:
        out = "input_" + out
    return out


def _literal(text: str, before_tag: bool) -> str:
    """Text that renders to exactly itself in Jinja."""
    probe = text + ("{" if before_tag else "")
    if not _DELIMITER.search(probe):
        return text
    if not _ENDRAW.search(text):
        return "{% raw %}" + text + "{% endraw %}"
    # The text holds `{% endraw %}` itself: escape each brace that would open a tag.
    return re.sub(r"\{(?=[{%#])|\{\Z" if before_tag else r"\{(?=[{%#])", '{{ "{" }}', text)


def to_jinja(body: str, *, jinja: bool = False, syntax: re.Pattern[str] = INPUT) -> str:
    """A .prompt.md body (or, with `syntax=GITHUB`, a .prompt.yml message) as the store's template."""
    out, pos = [], 0
    for m in syntax.finditer(body):
        part = body[pos:m.start()]
        out.append(part if jinja else _literal(part, before_tag=True))
        name = variable(m.group(1))
        out.append("{{" + name + "}}" if syntax is GITHUB and name == m.group(1) else "{{ " + name + " }}")
        pos = m.end()
    tail = body[pos:]
    out.append(tail if jinja else _literal(tail, before_tag=False))
    return "".join(out)


def to_text(template: str, *, existing: str | None = None, jinja: bool = False,
            syntax: re.Pattern[str] = INPUT) -> str:
    """The store's template as a .prompt.md body (or a .prompt.yml message); `existing` (the
    text the file has now) keeps each placeholder's own spelling (`${input:topic:Which topic?}`)
    where the name still is."""
    if existing is not None and to_jinja(existing, jinja=jinja, syntax=syntax) == template:
        return existing
    forms: dict[str, list[str]] = {}
    for m in syntax.finditer(existing or ""):
        forms.setdefault(variable(m.group(1)), []).append(m.group(0))
    used: dict[str, int] = {}

    def placeholder(name: str) -> str:
        seen = forms.get(name) or [f"${{input:{name}}}" if syntax is INPUT else "{{" + name + "}}"]
        n = used.get(name, 0)
        used[name] = n + 1
        return seen[min(n, len(seen) - 1)]

    if jinja:
        return template
    try:
        tokens = list(_lexer.lex(template))
    except TemplateSyntaxError as exc:
        raise FormatError(_not_text(f"Jinja that does not parse ({exc.message})", syntax)) from None
    out: list[str] = []
    i = 0
    while i < len(tokens):
        _, kind, value = tokens[i]
        if kind == "data":
            out.append(value)
            i += 1
            continue
        if kind == "raw_begin":
            j = i + 1
            while j < len(tokens) and tokens[j][1] != "raw_end":
                out.append(tokens[j][2])
                j += 1
            i = j + 1
            continue
        if kind == "variable_begin":
            j = i + 1
            inner = []
            while j < len(tokens) and tokens[j][1] != "variable_end":
                if tokens[j][1] != "whitespace":
                    inner.append(tokens[j])
                j += 1
            i = j + 1
            if len(inner) == 1 and inner[0][1] == "name":
                out.append(placeholder(inner[0][2]))
                continue
            if len(inner) == 1 and inner[0][1] == "string":
                out.append(ast.literal_eval(inner[0][2]))
                continue
            raise FormatError(_not_text("an expression {{ ... }} other than a plain variable", syntax))
        if kind == "comment_begin":
            raise FormatError(_not_text("a Jinja comment {# ... #}", syntax))
        raise FormatError(_not_text("a Jinja tag {% ... %}", syntax))
    return "".join(out)


def _not_text(what: str, syntax: re.Pattern[str]) -> str:
    if syntax is GITHUB:
        return (f"the new version uses {what}, which GitHub Models would send as text: a .prompt.yml "
                "message is text with {{name}} placeholders; keep to those")
    return (f"the new version uses {what}, which VS Code would send as text: a .prompt.md body is "
            f"text with ${{input:name}} placeholders unless its front matter says '{JINJA_KEY}: jinja2'; "
            "add that line to the file, or keep to {{ name }} placeholders")
