"""The sandbox's first layer: an allow-list of the Python a factor function needs, nothing more.

`check_code` parses the code and accepts only these constructs (anything else is rejected with
its line and a hint):

* at the top: ``import math`` / ``import statistics`` (optionally ``as name``), ``from math
  import sqrt, log`` (allow-listed functions only), function definitions without decorators,
  plain assignments and a docstring;
* in functions: assignments (also ``+=`` ...), ``if`` / ``elif`` / ``else``, ``for`` loops
  (over anything: the time limit bounds them), ``break`` / ``continue`` / ``pass``,
  ``return``, expression statements (a docstring, ``values.append(x)``);
* expressions: numbers, strings, ``True`` / ``False`` / ``None``, arithmetic, comparisons,
  ``and`` / ``or`` / ``not``, ``x if c else y``, subscripts and slices, list / tuple / dict /
  set literals, list / dict / set comprehensions, f-strings, and calls of allow-listed
  builtins (`ALLOWED_BUILTINS`), of the code's own functions, of `MODULE_FUNCTIONS` and of a
  few data methods (`ALLOWED_METHODS`).

Never: a name, attribute, argument, keyword or import alias that starts with ``_``; any other
attribute, or assigning to one; a builtin outside the list (``open``, ``getattr``, ``type``,
...) even as a variable's name; lambdas, generators (``yield`` or ``(x for x in y)``),
decorators, classes, ``while``, ``try``, ``with``, ``match``, ``global``, ``nonlocal``,
``raise``, ``assert``, ``del``, the walrus, ``async``, ``*`` unpacking, ``*args``,
``**kwargs``, star-imports, other modules.

Annotations are accepted (the envs' own factor functions have them) and never checked: the
child compiles the code with ``from __future__ import annotations`` semantics, so they stay
strings and are never evaluated. The module namespaces the code sees at run time hold only
the allow-listed functions, never a module object.

The child runs exactly the source that was checked (not a re-rendering of its tree): what was
judged is what runs, error line numbers match what the author wrote, and no unparse step can
fail on what parsed (an int literal of thousands of digits, a long operator chain).

Checking is bounded, so hostile input costs the trainer little and fails as a `SandboxError`:
at most `MAX_CODE_CHARS` characters, `MAX_NODES` syntax-tree nodes nested at most `MAX_DEPTH`
deep, and `CHECK_SECONDS` of wall time; any other failure of parsing or checking (a
`RecursionError`, `MemoryError`, ...) is a `SandboxError` too, of kind ``syntax``.
"""

from __future__ import annotations

import ast
import builtins
import time
from collections.abc import Iterator

from creditgym.credit.sandbox.result import SandboxError

__all__ = [
    "ALLOWED_MODULES",
    "MODULE_FUNCTIONS",
    "ALLOWED_BUILTINS",
    "ALLOWED_METHODS",
    "MAX_CODE_CHARS",
    "MAX_NODES",
    "MAX_DEPTH",
    "CHECK_SECONDS",
    "check_code",
]

# Far above any factor function (the envs' hand-written ones: under 1,000 characters and 150
# nodes, nested 11 deep), far below what makes the check costly (a 92 KB source took 2.9 s).
MAX_CODE_CHARS = 20_000
MAX_NODES = 5_000
MAX_DEPTH = 64  # below every recursive pass of `ast` and of `compile` in the child
CHECK_SECONDS = 1.0

# Pure functions and constants only; nothing that opens, imports, introspects or builds classes.
MODULE_FUNCTIONS: dict[str, frozenset[str]] = {
    "math": frozenset(
        """acos acosh asin asinh atan atan2 atanh ceil comb copysign cos cosh degrees dist e
        erf erfc exp expm1 fabs factorial floor fmod frexp fsum gamma gcd hypot inf isclose
        isfinite isinf isnan isqrt lcm ldexp lgamma log log10 log1p log2 modf nan perm pi pow
        prod radians remainder sin sinh sqrt tan tanh tau trunc""".split()
    ),
    "statistics": frozenset(
        """correlation covariance fmean geometric_mean harmonic_mean mean median median_high
        median_low mode multimode pstdev pvariance quantiles stdev variance""".split()
    ),
}
ALLOWED_MODULES = frozenset(MODULE_FUNCTIONS)

ALLOWED_BUILTINS = frozenset(
    """abs all any bool dict divmod enumerate filter float frozenset int isinstance len list map
    max min pow range reversed round set sorted str sum tuple zip True False None""".split()
)

# Methods of dicts, lists, strings and numbers that only compute on the data they are called on
# (no ``format``: its fields read attributes, "{0.__class__}").
ALLOWED_METHODS = frozenset(
    """get keys values items count index append extend insert pop remove sort reverse copy
    setdefault update startswith endswith lower upper strip lstrip rstrip split rsplit
    splitlines join replace find rfind partition rpartition isdigit isalpha isalnum isnumeric
    isspace islower isupper title capitalize is_integer""".split()
)

_EXPRESSIONS = (
    ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp, ast.Call, ast.Constant,
    ast.Name, ast.Attribute, ast.Subscript, ast.Slice, ast.List, ast.Tuple, ast.Dict, ast.Set,
    ast.ListComp, ast.DictComp, ast.SetComp, ast.comprehension, ast.JoinedStr,
    ast.FormattedValue, ast.keyword,
)  # fmt: skip
_STATEMENTS = (
    ast.FunctionDef, ast.Return, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.If, ast.For,
    ast.Break, ast.Continue, ast.Pass, ast.Expr, ast.Import, ast.ImportFrom,
)  # fmt: skip
_GRAMMAR = (
    ast.Module, ast.arguments, ast.arg, ast.alias, ast.Load, ast.Store, ast.operator,
    ast.unaryop, ast.cmpop, ast.boolop,
)  # fmt: skip
_ALLOWED_NODES = _EXPRESSIONS + _STATEMENTS + _GRAMMAR
_CONSTANT_TYPES = (str, int, float, bool, type(None))

# Every builtin the code may not touch, even as a variable's name: a name bound in one function
# would otherwise pass the check while another function's use of it reaches the real builtin.
_FORBIDDEN_BUILTINS = frozenset(dir(builtins)) - ALLOWED_BUILTINS

_WHY = {
    ast.Lambda: "lambdas", ast.GeneratorExp: "generator expressions (use a list comprehension)",
    ast.Yield: "generators", ast.YieldFrom: "generators", ast.ClassDef: "classes",
    ast.While: "while loops (use a for loop over a range)", ast.Try: "try", ast.With: "with",
    ast.Match: "match", ast.Global: "global", ast.Nonlocal: "nonlocal", ast.Raise: "raise",
    ast.Assert: "assert", ast.Delete: "del", ast.NamedExpr: "the walrus operator",
    ast.Starred: "*unpacking", ast.AsyncFunctionDef: "async", ast.Await: "await",
}  # fmt: skip


def _reject(node: ast.AST, what: str) -> SandboxError:
    return SandboxError(f"line {getattr(node, 'lineno', '?')}: {what} is not allowed", "syntax")


def check_code(code: str, function: str = "evaluate") -> str:
    """Check `code` against the allow-list; return the source that will run (`code` itself).

    Raises:
        SandboxError: the code is not plain factor-function Python, is too large or too deep,
            or does not define ``function(state, action)``; the message names the line and the
            construct. Nothing else escapes, whatever the input.
    """
    if not isinstance(code, str):
        raise SandboxError(f"the code must be a string, not {type(code).__name__}", "syntax")
    if len(code) > MAX_CODE_CHARS:
        raise SandboxError(
            f"the code is {len(code)} characters; at most {MAX_CODE_CHARS}", "syntax"
        )
    try:
        _check(code, function, time.monotonic() + CHECK_SECONDS)
    except SandboxError:
        raise
    except Exception as error:  # noqa: BLE001  (RecursionError, MemoryError, ...: one kind)
        raise SandboxError(
            f"the code cannot be checked ({type(error).__name__}); write a smaller, flatter "
            "function",
            "syntax",
        ) from None
    return code


def _check(code: str, function: str, deadline: float) -> None:
    try:
        tree = ast.parse(code)
    except SyntaxError as error:
        where = f" on line {error.lineno}" if error.lineno else ""
        raise SandboxError(f"syntax error{where}: {error.msg}", "syntax") from None
    nodes = list(_checked_nodes(tree, deadline))  # bounded before any recursive pass
    modules = _check_imports(nodes)
    bound = _bound_names(nodes)
    for check in (_check_construct, _check_names):  # the plainest reason first
        for node in nodes:
            check(node)
    for index, node in enumerate(nodes):
        _check_node(node, modules, bound)
        if index % 512 == 0 and time.monotonic() > deadline:
            raise _too_slow()
    defined = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    if function not in defined:
        raise SandboxError(f"the code defines no function {function!r}(state, action)", "syntax")
    arguments = defined[function].args
    if not len(arguments.args) - len(arguments.defaults) <= 2 <= len(arguments.args):
        raise SandboxError(f"{function} must take two arguments: (state, action)", "syntax")


def _too_slow() -> SandboxError:
    return SandboxError(
        f"checking the code took over {CHECK_SECONDS:g} s; write a smaller function", "syntax"
    )


# Annotations are never run (see the module docstring), so never checked.
_ANNOTATION_FIELDS = {
    ast.FunctionDef: "returns",
    ast.arg: "annotation",
    ast.AnnAssign: "annotation",
}


def _checked_nodes(tree: ast.Module, deadline: float) -> Iterator[ast.AST]:
    """Every node the check judges (annotations left out), depth first without recursion;
    `SandboxError` past `MAX_NODES` nodes, `MAX_DEPTH` levels or the deadline."""
    stack: list[tuple[ast.AST, int, int]] = [(tree, 0, 1)]  # node, depth, nearest line
    count = 0
    while stack:
        node, depth, line = stack.pop()
        line = getattr(node, "lineno", line)
        count += 1
        if count > MAX_NODES:
            raise SandboxError(f"the code has over {MAX_NODES} syntax nodes", "syntax")
        if depth > MAX_DEPTH:
            raise SandboxError(
                f"line {line}: the code is nested over {MAX_DEPTH} levels deep (a long chain "
                "of operators or brackets?)",
                "syntax",
            )
        if count % 512 == 0 and time.monotonic() > deadline:
            raise _too_slow()
        yield node
        skipped = _ANNOTATION_FIELDS.get(type(node))
        for name, value in ast.iter_fields(node):
            if name == skipped:
                continue
            children = value if isinstance(value, list) else [value]
            stack.extend((c, depth + 1, line) for c in reversed(children) if isinstance(c, ast.AST))


def _check_imports(nodes: list[ast.AST]) -> dict[str, str]:
    """Names bound to an allowed module (``import math as m`` -> {"m": "math"})."""
    modules = {}
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in ALLOWED_MODULES:
                    raise _reject(
                        node, f"import of {alias.name!r} (only {sorted(ALLOWED_MODULES)})"
                    )
                modules[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level or node.module not in ALLOWED_MODULES:
                raise _reject(node, f"import of {node.module!r} (only {sorted(ALLOWED_MODULES)})")
            for alias in node.names:
                if alias.name not in MODULE_FUNCTIONS[node.module]:
                    raise _reject(node, f"importing {alias.name!r} from {node.module}")
    return modules


def _bound_names(nodes: list[ast.AST]) -> set[str]:
    """Every name the code binds: variables, arguments, functions, imports."""
    bound = set()
    for node in nodes:
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.FunctionDef):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add(node.asname or node.name.split(".")[0])
    return bound


def _check_construct(node: ast.AST) -> None:
    if not isinstance(node, _ALLOWED_NODES):
        raise _reject(node, _WHY.get(type(node), type(node).__name__))


def _check_names(node: ast.AST) -> None:
    for name in _names_of(node):
        if name.startswith("_"):
            raise _reject(node, f"the name {name!r} (names may not start with '_')")
        if name in _FORBIDDEN_BUILTINS:
            raise _reject(node, f"the name {name!r}")


def _check_node(node: ast.AST, modules: dict[str, str], bound: set[str]) -> None:
    if isinstance(node, ast.Name) and node.id not in bound and node.id not in ALLOWED_BUILTINS:
        raise _reject(node, f"the name {node.id!r} (not defined, and not an allowed builtin)")
    elif isinstance(node, ast.Attribute):
        if not isinstance(node.ctx, ast.Load):
            raise _reject(node, f"assigning to the attribute {node.attr!r}")
        owner = node.value.id if isinstance(node.value, ast.Name) else None
        module = modules.get(owner or "")
        if module is not None and node.attr in MODULE_FUNCTIONS[module]:
            return
        if node.attr not in ALLOWED_METHODS:
            where = f"{module}.{node.attr}" if module else f"the attribute {node.attr!r}"
            raise _reject(node, where)
    elif isinstance(node, ast.Constant) and not isinstance(node.value, _CONSTANT_TYPES):
        raise _reject(node, f"a {type(node.value).__name__} constant")
    elif isinstance(node, ast.FunctionDef) and node.decorator_list:
        raise _reject(node, "a decorator")
    elif isinstance(node, ast.arguments) and (
        node.vararg or node.kwarg or node.kwonlyargs or node.posonlyargs
    ):
        raise _reject(node, "*args, **kwargs, keyword-only or positional-only arguments")
    elif isinstance(node, ast.keyword) and node.arg is None:
        raise _reject(node, "**unpacking")
    elif isinstance(node, ast.comprehension) and node.is_async:
        raise _reject(node, "async")


def _names_of(node: ast.AST) -> list[str]:
    """Every identifier `node` itself carries."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.FunctionDef):
        return [node.name]
    if isinstance(node, ast.keyword):
        return [node.arg] if node.arg else []
    if isinstance(node, ast.alias):
        return [node.name, *([node.asname] if node.asname else [])]
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    return []
