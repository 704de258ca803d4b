"""The part of Go's text/template (as Helm uses it) that the charts' ``bin/`` scripts need.

Supported: text with ``{{ }}`` actions and the ``{{-``/``-}}`` trim markers,
comments, ``if``/``else if``/``else``, ``range`` (over lists and maps, with
``$k, $v :=`` or ``$v :=``), ``with``, variables (``$x := ...``, ``$``), field
chains (``.Values.conf.x``), string/number/bool literals, parenthesised
pipelines, ``|`` pipes and Helm's everyday functions (``default``, ``empty``,
``quote``, ``and``, ``or``, ``not``, ``eq``, ``ne``, ``kindIs``, ``hasKey``,
``index``, ``replace``, ``toString``, ``printf`` with ``%s``/``%d``/``%v``,
``lower``, ``upper``, ``trim``). Anything else (``include``, ``tpl``,
``tuple``: helm-toolkit's helpers, which are not under ../shared) raises
``TemplateUnsupported`` naming it, so a chart change shows as a clear failure
instead of a wrong script. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable


class TemplateUnsupported(ValueError):
    """The template uses something this renderer does not implement (or is malformed)."""


_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)


def _split(text: str) -> list[tuple[str, str]]:
    """[("text", ...), ("action", ...)] with the trim markers applied to the neighbouring text."""
    parts: list[tuple[str, str]] = []
    pos = 0
    trim_next = False
    for m in _ACTION.finditer(text):
        chunk = text[pos:m.start()]
        if trim_next:
            chunk = chunk.lstrip()
        if m.group(1):
            chunk = chunk.rstrip()
        parts.append(("text", chunk))
        body = m.group(2).strip()
        if not (body.startswith("/*") and body.endswith("*/")):
            parts.append(("action", body))
        trim_next = bool(m.group(3))
        pos = m.end()
    rest = text[pos:]
    parts.append(("text", rest.lstrip() if trim_next else rest))
    return [p for p in parts if p != ("text", "")]


# -- the tree ------------------------------------------------------------------

@dataclass
class _Block:
    kind: str  # "root", "if", "range", "with"
    expr: str = ""
    body: list[Any] = field(default_factory=list)
    orelse: list[Any] = field(default_factory=list)
    elifs: list[tuple[str, list[Any]]] = field(default_factory=list)


def _parse(text: str) -> _Block:
    root = _Block("root")
    stack = [root]
    current: list[list[Any]] = [root.body]
    for kind, value in _split(text):
        if kind == "text":
            current[-1].append(value)
            continue
        word = value.split(None, 1)[0] if value else ""
        rest = value[len(word):].strip()
        if word in ("if", "range", "with"):
            block = _Block(word, rest)
            current[-1].append(block)
            stack.append(block)
            current.append(block.body)
        elif word == "else":
            block = stack[-1]
            if block.kind == "root":
                raise TemplateUnsupported("{{ else }} outside a block")
            if rest.startswith("if "):
                block.elifs.append((rest[3:].strip(), []))
                current[-1] = block.elifs[-1][1]
            else:
                current[-1] = block.orelse
        elif word == "end":
            if len(stack) == 1:
                raise TemplateUnsupported("{{ end }} without a block")
            stack.pop()
            current.pop()
        elif word in ("define", "template", "block", "include", "tpl"):
            raise TemplateUnsupported(f"{{{{ {value} }}}}: '{word}' (helm-toolkit helpers are not available)")
        else:
            current[-1].append(("expr", value))
    if len(stack) != 1:
        raise TemplateUnsupported(f"{{{{ {stack[-1].kind} {stack[-1].expr} }}}} has no {{{{ end }}}}")
    return root


# -- expressions ---------------------------------------------------------------

_TOKEN = re.compile(r"""\s*(?:
    (?P<str>"(?:[^"\\]|\\.)*") | (?P<raw>`[^`]*`) | (?P<num>-?\d+(?:\.\d+)?\b) |
    (?P<decl>:=|=) | (?P<pipe>\|) | (?P<lp>\() | (?P<rp>\)) | (?P<comma>,) |
    (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*) | (?P<field>\.(?:[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)?) |
    (?P<ident>[A-Za-z_][A-Za-z0-9_]*))""", re.X)


def _tokens(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise TemplateUnsupported(f"cannot read {expr[pos:]!r} in {{{{ {expr} }}}}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _kind(value: Any) -> str:
    if value is None:
        return "invalid"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, (list, tuple)):
        return "slice"
    return type(value).__name__


def truth(value: Any) -> bool:
    """Go's truth: false, 0, nil and empty strings, lists and maps are false."""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0
    if isinstance(value, (str, list, tuple, dict)):
        return len(value) > 0
    return True


def to_text(value: Any) -> str:
    """How a value prints (Helm prints nil as an empty string, booleans in lower case)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list, tuple)):
        raise TemplateUnsupported(f"printing a {_kind(value)} ({value!r:.80})")
    return str(value)


def _printf(fmt: str, *args: Any) -> str:
    values = iter(args)

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "%%":
            return "%"
        return to_text(next(values))
    return re.sub(r"%%|%[sdvq]", one, fmt)


FUNCS: dict[str, Callable[..., Any]] = {
    "not": lambda v: not truth(v),
    "empty": lambda v: not truth(v),
    "eq": lambda a, *bs: any(a == b for b in bs),
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "gt": lambda a, b: a > b,
    "default": lambda d, *v: v[0] if v and truth(v[0]) else d,
    "kindIs": lambda k, v: _kind(v) == k,
    "quote": lambda *v: " ".join('"' + to_text(x).replace("\\", "\\\\").replace('"', '\\"') + '"' for x in v),
    "squote": lambda *v: " ".join("'" + to_text(x) + "'" for x in v),
    "toString": to_text,
    "hasKey": lambda m, k: isinstance(m, dict) and k in m,
    "replace": lambda old, new, s: to_text(s).replace(old, new),
    "printf": _printf,
    "lower": lambda s: to_text(s).lower(),
    "upper": lambda s: to_text(s).upper(),
    "trim": lambda s: to_text(s).strip(),
    "has": lambda needle, haystack: needle in (haystack or []),
    "coalesce": lambda *v: next((x for x in v if truth(x)), None),
    "list": lambda *v: list(v),
    "append": lambda seq, v: [*(seq or []), v],
    "contains": lambda sub, s: to_text(sub) in to_text(s),
}


class _Scope:
    def __init__(self, root: Any, dot: Any, variables: dict[str, Any], parent: "_Scope | None" = None) -> None:
        self.root, self.dot, self.vars, self.parent = root, dot, variables, parent
        self.own: set[str] = set(variables) if parent is None else set()  # declared here (:=, range's names)

    def child(self, dot: Any) -> "_Scope":
        return _Scope(self.root, dot, dict(self.vars), self)

    def declare(self, name: str, value: Any) -> None:
        self.vars[name] = value
        self.own.add(name)

    def assign(self, name: str, value: Any, expr: str) -> None:
        """``$x = v``: the nearest declaration of ``$x`` takes the value (seen by the scopes between, too)."""
        scope: _Scope | None = self
        while scope is not None:
            if name not in scope.vars:
                break
            scope.vars[name] = value
            if name in scope.own:
                return
            scope = scope.parent
        raise TemplateUnsupported(f"{{{{ {expr} }}}}: {name} is assigned but never declared")


def _lookup(base: Any, path: list[str], expr: str) -> Any:
    value = base
    for name in path:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise TemplateUnsupported(f"{expr}: .{name} of a {_kind(value)}")
        value = value.get(name)
    return value


def _operand(tokens: list[tuple[str, str]], i: int, scope: _Scope, expr: str) -> tuple[Any, int]:
    kind, text = tokens[i]
    if kind == "str":
        return bytes(text[1:-1], "utf-8").decode("unicode_escape"), i + 1
    if kind == "raw":
        return text[1:-1], i + 1
    if kind == "num":
        return (float(text) if "." in text else int(text)), i + 1
    if kind == "field":
        return (scope.dot if text == "." else _lookup(scope.dot, text[1:].split("."), expr)), i + 1
    if kind == "var":
        name, *path = text.split(".")
        if name == "$":
            base = scope.root
        elif name in scope.vars:
            base = scope.vars[name]
        else:
            raise TemplateUnsupported(f"{expr}: undefined variable {name}")
        return _lookup(base, path, expr), i + 1
    if kind == "lp":
        depth, j = 1, i + 1
        while j < len(tokens) and depth:
            depth += {"lp": 1, "rp": -1}.get(tokens[j][0], 0)
            j += 1
        if depth:
            raise TemplateUnsupported(f"{expr}: unbalanced parentheses")
        return _pipeline(tokens[i + 1:j - 1], scope, expr), j
    if kind == "ident" and text in ("true", "false", "nil"):
        return {"true": True, "false": False, "nil": None}[text], i + 1
    raise TemplateUnsupported(f"{expr}: unexpected {text!r}")


def _command(tokens: list[tuple[str, str]], scope: _Scope, expr: str, piped: tuple[Any, ...]) -> Any:
    if not tokens:
        raise TemplateUnsupported(f"{{{{ {expr} }}}}: an empty command")
    kind, name = tokens[0]
    if kind == "ident" and name not in ("true", "false", "nil"):
        args, i = [], 1
        while i < len(tokens):
            value, i = _operand(tokens, i, scope, expr)
            args.append(value)
        args.extend(piped)
        if name in ("and", "or"):
            result = args[0]
            for a in args[1:] if name == "and" else args[1:]:
                if (name == "and" and not truth(result)) or (name == "or" and truth(result)):
                    break
                result = a
            return result
        if name == "index":
            value = args[0]
            for key in args[1:]:
                value = value[key] if value is not None else None
            return value
        func = FUNCS.get(name)
        if func is None:
            raise TemplateUnsupported(f"{{{{ {expr} }}}}: the function '{name}' (helm-toolkit helpers are not available)")
        return func(*args)
    value, i = _operand(tokens, 0, scope, expr)
    if i != len(tokens) or piped:
        raise TemplateUnsupported(f"{{{{ {expr} }}}}: cannot call a value")
    return value


def _pipeline(tokens: list[tuple[str, str]], scope: _Scope, expr: str) -> Any:
    commands: list[list[tuple[str, str]]] = [[]]
    depth = 0
    for tok in tokens:
        depth += {"lp": 1, "rp": -1}.get(tok[0], 0)
        if tok[0] == "pipe" and depth == 0:
            commands.append([])
        else:
            commands[-1].append(tok)
    value: tuple[Any, ...] = ()
    for cmd in commands:
        value = (_command(cmd, scope, expr, value),)
    return value[0]


def _declaration(expr: str, scope: _Scope) -> tuple[list[str], Any, str]:
    """``$a, $b := pipeline`` / ``$a = pipeline`` / ``pipeline``: (names, value, ":=", "=" or "")."""
    tokens = _tokens(expr)
    for i, (kind, text) in enumerate(tokens):
        if kind == "decl":
            names = [t for k, t in tokens[:i] if k == "var"]
            return names, tokens[i + 1:], text
    return [], tokens, ""


def _evaluate(nodes: list[Any], scope: _Scope, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, tuple):
            names, tokens, how = _declaration(node[1], scope)
            value = _pipeline(tokens, scope, node[1])
            if how == ":=":
                scope.declare(names[0], value)
            elif how == "=":
                scope.assign(names[0], value, node[1])
            else:
                out.append(to_text(value))
        elif node.kind == "if":
            for cond, body in [(node.expr, node.body), *node.elifs]:
                if truth(_pipeline(_tokens(cond), scope, cond)):
                    _evaluate(body, scope, out)
                    break
            else:
                _evaluate(node.orelse, scope, out)
        elif node.kind == "with":
            value = _pipeline(_tokens(node.expr), scope, node.expr)
            if truth(value):
                _evaluate(node.body, scope.child(value), out)
            else:
                _evaluate(node.orelse, scope, out)
        elif node.kind == "range":
            names, tokens, _ = _declaration(node.expr, scope)
            value = _pipeline(tokens, scope, node.expr)
            if isinstance(value, dict):
                items = [(k, value[k]) for k in sorted(value)]
            elif isinstance(value, (list, tuple)):
                items = list(enumerate(value))
            elif value is None:
                items = []
            else:
                raise TemplateUnsupported(f"{{{{ range {node.expr} }}}}: a {_kind(value)}")
            if not items:
                _evaluate(node.orelse, scope, out)
            for key, item in items:
                inner = scope.child(item)
                if len(names) == 2:
                    inner.declare(names[0], key)
                    inner.declare(names[1], item)
                elif len(names) == 1:
                    inner.declare(names[0], item)
                _evaluate(node.body, inner, out)


def render(text: str, values: dict[str, Any], *, chart: dict[str, Any] | None = None) -> str:
    """``text`` rendered with ``.Values`` = ``values`` (and ``.Chart``)."""
    root = {"Values": values, "Chart": chart or {}, "Release": {"Name": "stackyard", "Namespace": "openstack"}}
    out: list[str] = []
    _evaluate(_parse(text).body, _Scope(root, root, {"$": root}), out)
    return "".join(out)
