"""A Jinja template written to a `.prompt` file as Handlebars: for a version made in another
format (or through the SDK with Jinja) that lands in a Dotprompt file.

A `.prompt` file's own versions are Handlebars already (`template_format: handlebars`) and are
written as they are; only Jinja versions pass here. What Handlebars can say is translated:
`{{ var }}`, `{{ a.b }}`, `{% if %}`/`{% elif %}`/`{% else %}`, `{% if not x %}`,
`{% if a == b %}` (ifEquals), `{% for this in xs %}` with `loop.index0`/`loop.first`/`loop.last`,
`| tojson` and comments; anything else (filters, `{% set %}`, `{% include %}`, macros) is refused
with a sentence, and the file is left as it was.
"""

from __future__ import annotations

import re

from .common import FormatError

_PATH = r"(?:@index|@first|@last|@key|this(?:\.[A-Za-z_]\w*)*|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)"
_PATH_RE = re.compile(rf"^{_PATH}$")
_LITERAL = r"(?:\"[^\"]*\"|'[^']*'|-?\d+(?:\.\d+)?|true|false|null)"
_SPECIAL = {"@index": "loop.index0", "@first": "loop.first", "@last": "loop.last"}


_JINJA_TAG = re.compile(r"\{\{(-?)(.*?)(-?)\}\}|\{%(-?)(.*?)(-?)%\}|\{#(-?)(.*?)(-?)#\}", re.S)
_UNSPECIAL = {v: k for k, v in _SPECIAL.items()}


def _hpath(expr: str) -> str:
    expr = expr.strip()
    if expr in _UNSPECIAL:
        return _UNSPECIAL[expr]
    if not _PATH_RE.match(expr) or expr.startswith("@"):
        raise FormatError(f"the template uses {expr!r}, which Handlebars cannot express; "
                          "a Dotprompt file can hold plain variables, #if, #unless, #each and json")
    return expr


def _harg(expr: str) -> str:
    expr = expr.strip()
    if expr == "none":
        return "null"
    if re.fullmatch(_LITERAL, expr):
        return expr
    return _hpath(expr)


def from_jinja(source: str) -> str:
    out: list[str] = []
    stack: list[str] = []
    pos = 0
    for m in _JINJA_TAG.finditer(source):
        out.append(source[pos:m.start()])
        pos = m.end()
        if m.group(2) is not None:
            lt, expr, rt = m.group(1), m.group(2).strip(), m.group(3)
            lt, rt = ("~" if lt else ""), ("~" if rt else "")
            if expr.endswith("| tojson"):
                out.append(f"{{{{{lt}json {_hpath(expr[:-len('| tojson')])}{rt}}}}}")
            else:
                out.append(f"{{{{{lt}{_hpath(expr)}{rt}}}}}")
            continue
        if m.group(8) is not None:
            lt, rt = ("~" if m.group(7) else ""), ("~" if m.group(9) else "")
            out.append(f"{{{{{lt}!{m.group(8)}{rt}}}}}")
            continue
        lt, stmt, rt = ("~" if m.group(4) else ""), m.group(5).strip(), ("~" if m.group(6) else "")
        words = stmt.split()
        head = words[0] if words else ""
        if head == "if":
            cond = stmt[2:].strip()
            eq = re.fullmatch(r"(\S+)\s*(==|!=)\s*(\S+)", cond)
            if eq:
                helper = "ifEquals" if eq.group(2) == "==" else "unlessEquals"
                out.append(f"{{{{{lt}#{helper} {_harg(eq.group(1))} {_harg(eq.group(3))}{rt}}}}}")
            elif cond.startswith("not "):
                helper = "unless"
                out.append(f"{{{{{lt}#unless {_hpath(cond[4:])}{rt}}}}}")
            else:
                helper = "if"
                out.append(f"{{{{{lt}#if {_hpath(cond)}{rt}}}}}")
            stack.append(helper)
        elif head == "elif" and stack and stack[-1] != "each":
            out.append(f"{{{{{lt}else if {_hpath(stmt[4:])}{rt}}}}}")
        elif head == "else" and len(words) == 1 and stack:
            out.append(f"{{{{{lt}else{rt}}}}}")
        elif head == "for" and len(words) == 4 and words[1] == "this" and words[2] == "in":
            out.append(f"{{{{{lt}#each {_hpath(words[3])}{rt}}}}}")
            stack.append("each")
        elif head in ("endif", "endfor") and stack and (stack[-1] == "each") == (head == "endfor"):
            out.append(f"{{{{{lt}/{stack.pop()}{rt}}}}}")
        else:
            raise FormatError(f"the template's '{{% {stmt} %}}' has no Handlebars equivalent; "
                              "keep this prompt in a Jinja format (.prompty, .prompt.md, .txt)")
    out.append(source[pos:])
    return "".join(out)
