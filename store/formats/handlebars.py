"""The part of Handlebars that Dotprompt files use, translated to the store's Jinja and back.

Supported: `{{var}}` and `{{a.b}}`, `{{{var}}}`, `{{! comment}}`, `{{#if}}`/`{{else if}}`/
`{{else}}`, `{{#unless}}`, `{{#each}}` with `this`, `@index`, `@first`, `@last`,
`{{#ifEquals a b}}`, `{{#unlessEquals a b}}`, `{{json x}}`, and `~` whitespace control.
Anything else (`{{#with}}`, partials `{{> name}}`, `{{media}}`, `{{history}}`, `{{section}}`,
`{{lookup}}`, `{{log}}`, `../` paths, hash arguments, custom helpers) is refused with a
sentence naming it, rather than versioned as something that renders differently.
"""

from __future__ import annotations

import re

from .common import FormatError

_HBS_TAG = re.compile(r"\\?\{\{\{(~?)\s*(.*?)\s*(~?)\}\}\}|\\?\{\{(~?)(.*?)(~?)\}\}", re.S)
_PATH = r"(?:@index|@first|@last|@key|this(?:\.[A-Za-z_]\w*)*|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)"
_PATH_RE = re.compile(rf"^{_PATH}$")
_LITERAL = r"(?:\"[^\"]*\"|'[^']*'|-?\d+(?:\.\d+)?|true|false|null)"
_ARG_RE = re.compile(rf"^(?:{_PATH}|{_LITERAL})$")
_SPECIAL = {"@index": "loop.index0", "@first": "loop.first", "@last": "loop.last"}
_BLOCKS = {"if", "unless", "each", "ifEquals", "unlessEquals"}
_HELPERS = {"history", "media", "section", "role", "lookup", "log"}


def _path(expr: str, where: str) -> str:
    if not _PATH_RE.match(expr):
        raise FormatError(f"{where}: {expr!r} is not a plain variable; Dotprompt files here support "
                          "{{name}}, {{a.b}}, #if, #unless, #each, ifEquals, unlessEquals and json")
    if expr == "@key":
        raise FormatError(f"{where}: '@key' (iterating an object) is not supported; iterate a list")
    return _SPECIAL.get(expr, expr)


def _arg(expr: str, where: str) -> str:
    if not _ARG_RE.match(expr):
        raise FormatError(f"{where}: {expr!r} is not a variable or a literal")
    if expr == "null":
        return "none"
    return _SPECIAL.get(expr, expr)


def to_jinja(source: str) -> str:
    out: list[str] = []
    stack: list[str] = []
    pos = 0
    for m in _HBS_TAG.finditer(source):
        out.append(source[pos:m.start()])
        pos = m.end()
        raw = m.group(0)
        line = source.count("\n", 0, m.start()) + 1
        where = f"line {line} of the template"
        if raw.startswith("\\"):
            raise FormatError(f"{where}: escaped '\\{{{{' is not supported; remove the backslash or the braces")
        if m.group(2) is not None:  # {{{ triple }}}: unescaped output, the same thing here
            left, expr, right = m.group(1), m.group(2), m.group(3)
        else:
            left, expr, right = m.group(4), m.group(5).strip(), m.group(6)
        lt, rt = ("-" if left else ""), ("-" if right else "")
        if expr.startswith("!"):
            text = expr[1:]
            if text.startswith("--") and text.endswith("--"):
                text = text[2:-2]
            out.append("{#" + lt + text.replace("#}", "# }") + rt + "#}")
            continue
        words = expr.split()
        head = words[0] if words else ""
        if head.startswith("#"):
            helper, args = head[1:], words[1:]
            if helper not in _BLOCKS:
                raise FormatError(f"{where}: the Handlebars block helper '#{helper}' is not supported")
            if any("=" in a for a in args):
                raise FormatError(f"{where}: hash arguments ({' '.join(args)}) are not supported")
            if helper in ("if", "unless", "each"):
                if len(args) != 1:
                    raise FormatError(f"{where}: '#{helper}' takes one variable")
                target = _path(args[0], where)
                out.append({"if": f"{{%{lt} if {target} {rt}%}}", "unless": f"{{%{lt} if not {target} {rt}%}}",
                            "each": f"{{%{lt} for this in {target} {rt}%}}"}[helper])
            else:
                if len(args) != 2:
                    raise FormatError(f"{where}: '#{helper}' compares two values")
                op = "==" if helper == "ifEquals" else "!="
                out.append(f"{{%{lt} if {_arg(args[0], where)} {op} {_arg(args[1], where)} {rt}%}}")
            stack.append(helper)
            continue
        if head.startswith("/"):
            helper = head[1:]
            if not stack or stack[-1] != helper:
                expected = f"'{{{{/{stack[-1]}}}}}'" if stack else "nothing"
                raise FormatError(f"{where}: '{{{{/{helper}}}}}' closes {expected}")
            stack.pop()
            out.append(f"{{%{lt} {'endfor' if helper == 'each' else 'endif'} {rt}%}}")
            continue
        if head == "else":
            if not stack:
                raise FormatError(f"{where}: '{{{{else}}}}' outside a block")
            if len(words) >= 3 and words[1] == "if" and stack[-1] in ("if", "unless", "ifEquals", "unlessEquals"):
                out.append(f"{{%{lt} elif {_path(' '.join(words[2:]), where)} {rt}%}}")
            elif len(words) == 1:
                out.append(f"{{%{lt} else {rt}%}}")
            else:
                raise FormatError(f"{where}: '{{{{{expr}}}}}' is not supported; use '{{{{else}}}}' or '{{{{else if x}}}}'")
            continue
        if head.startswith(">"):
            raise FormatError(f"{where}: partials ('{{{{{expr}}}}}') are not supported; "
                              "use {% include \"other/prompt\" %} in a Jinja format instead")
        if head == "json" and len(words) == 2:
            out.append(f"{{{{{lt} {_path(words[1], where)} | tojson {rt}}}}}")
            continue
        if head in _HELPERS:
            raise FormatError(f"{where}: the Dotprompt helper '{head}' is not supported")
        if len(words) == 1:
            if words[0].startswith("../"):
                raise FormatError(f"{where}: parent paths ('{words[0]}') are not supported")
            out.append(f"{{{{{lt} {_path(words[0], where)} {rt}}}}}")
            continue
        raise FormatError(f"{where}: the Handlebars helper '{head}' is not supported")
    if stack:
        raise FormatError(f"the template leaves '{{{{#{stack[-1]}}}}}' open; close it with '{{{{/{stack[-1]}}}}}'")
    out.append(source[pos:])
    return "".join(out)


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
