"""The compressed record script's code: each module re-printed smaller without changing what it computes.

`minify` drops docstrings, function annotations (class annotations stay: dataclasses need them) and
annotation-only `if TYPE_CHECKING:` imports, loses comments in the re-print, indents by one space per level, and
gives each function's local variables and parameters, and each comprehension's loop variables, short names, as
record authors' minifiers do. A name is
kept wherever renaming it could change what a name means: parameters some caller may pass by name (see
`_positional_parameters`), names declared `global` or `nonlocal`, names a nested function, lambda, class or
comprehension binds again, and every name of a function that calls `locals()`, `vars()`, `eval` or `exec`. A new
name is never one the function's code already uses, a keyword or a builtin. `minify_modules` also leaves out
the top-level definitions no running code reaches. `plain` records embed the verbatim source; this is for the
wrapped forms."""

import ast
import builtins
import importlib.abc
import importlib.machinery
import itertools
import keyword
import logging
import re
import string

import torch
from torch import nn

from golf.record.closure import type_checking_only

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp,
           ast.DictComp, ast.GeneratorExp)
_INTROSPECTION = {"locals", "vars", "eval", "exec"}
_CONSTANT_PARTS = (ast.Constant, ast.JoinedStr, ast.FormattedValue, ast.Name, ast.Tuple, ast.List, ast.Dict, ast.Set,
                   ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.operator, ast.unaryop, ast.boolop, ast.cmpop,
                   ast.expr_context)
_RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins))
# Methods that torch or Python may call on golf's subclasses, perhaps naming their arguments.
_LIBRARY_METHODS = {name for base in (object, dict, list, BaseException, nn.Module, torch.optim.Optimizer,
                                      torch.autograd.Function, importlib.machinery.PathFinder, importlib.abc.Loader,
                                      logging.Handler, logging.Formatter, logging.Filter) for name in dir(base)}


class _Strip(ast.NodeTransformer):
    def _body(self, node):
        self.generic_visit(node)
        body = [stmt for stmt in node.body if not type_checking_only(stmt)]
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            body = body[1:]
        node.body = body or ([] if isinstance(node, ast.Module) else [ast.Pass()])
        return node

    def visit_FunctionDef(self, node):
        node.returns = None
        for arg in _arguments(node.args):
            arg.annotation = None
        return self._body(node)

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_ClassDef = _body
    visit_Module = _body

    def visit_Raise(self, node):
        """A GolfError's `fix=` names golf's commands and config keys, which a record cannot take (golf.errors)."""
        if isinstance(node.exc, ast.Call):
            node.exc.keywords = [k for k in node.exc.keywords if k.arg != "fix"]
        return node


def _arguments(args: ast.arguments) -> list[ast.arg]:
    return [a for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg) if a is not None]


def _own_nodes(scope: ast.AST):
    """The nodes of `scope`'s own body: nested scopes are yielded but not entered."""
    pending = list(scope.body) if not isinstance(scope, ast.Lambda) else [scope.body]
    while pending:
        node = pending.pop()
        yield node
        if not isinstance(node, _SCOPES):
            pending.extend(ast.iter_child_nodes(node))


def _bound_names(scope: ast.AST) -> set[str]:
    """Every name a nested scope (or its parameters) binds or declares."""
    names = set()
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        names.update(a.arg for a in _arguments(scope.args))
    for node in ast.walk(scope):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node is not scope:
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def _used_names(function: ast.AST) -> set[str]:
    used = _bound_names(function)
    used.update(node.id for node in ast.walk(function) if isinstance(node, ast.Name))
    return used


def _renamable_locals(function: ast.AST, parameters: list[str]) -> list[str]:
    """The function's own local variables that can take another name: the renamable `parameters`, then the
    other locals in order of first appearance."""
    if any(isinstance(n, ast.Name) and n.id in _INTROSPECTION for n in ast.walk(function)):
        return []
    stored, kept = list(parameters), {a.arg for a in _arguments(function.args)} - set(parameters)
    for node in sorted(_own_nodes(function), key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0))):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            stored.append(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            stored.append(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            kept.update(node.names)
        elif isinstance(node, ast.alias):
            kept.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, _SCOPES):
            kept.update(_bound_names(node))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                kept.add(node.name)
    return [name for name in dict.fromkeys(stored) if name not in kept]


def _positional_parameters(function: ast.AST, is_method: bool, spelled: set[str]) -> list[str]:
    """Parameters no caller can pass by name: not keyword-only, not `self`/`cls`, no word any code `spelled`
    (keyword arguments and string constants, which `**` calls unpack), not of a decorated function (a
    decorator may read the signature), and not of a method libraries call (`forward` excepted: only golf
    passes its arguments)."""
    if function.decorator_list or (is_method and function.name != "forward" and function.name in _LIBRARY_METHODS):
        return []
    args = function.args
    unnamed = [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return [a.arg for a in (*args.posonlyargs, *args.args) if a.arg not in ("self", "cls") and a.arg not in spelled] \
        + unnamed


def _short_names():
    for size in itertools.count(1):
        for letters in itertools.product(string.ascii_letters, repeat=size):
            yield "".join(letters)


def _rename_locals(function: ast.AST, parameters: list[str]) -> None:
    names = _renamable_locals(function, parameters)
    if not names:
        return
    taken = _used_names(function) | _RESERVED
    fresh = (name for name in _short_names() if name not in taken)
    mapping = {name: name if len(name) == 1 else next(fresh) for name in names}
    for node in [*ast.walk(function), *_arguments(function.args)]:
        if isinstance(node, ast.Name) and node.id in mapping:
            node.id = mapping[node.id]
        elif isinstance(node, ast.ExceptHandler) and node.name in mapping:
            node.name = mapping[node.name]
        elif isinstance(node, ast.arg) and node.arg in mapping:
            node.arg = mapping[node.arg]


def _spelled(trees) -> set[str]:
    """The names code in `trees` may pass arguments by: every keyword argument, and every string constant that
    could be a key of a `**` mapping (an identifier, or a dotted path of them, such as a config key's path).
    A string with spaces or punctuation is a message, never an argument name."""
    words = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg:
                words.add(node.arg)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and re.fullmatch(r"[A-Za-z_][\w.]*", node.value):
                words.update(node.value.split("."))
    return words


def _rename_comprehension(node: ast.AST) -> None:
    """Short names for a comprehension's loop variables, which only the comprehension sees. Its first iterable
    runs in the enclosing scope, so names there keep their meaning; a name a scope nested in it binds again
    keeps its name."""
    targets = [n.id for gen in node.generators for n in ast.walk(gen.target) if isinstance(n, ast.Name)]
    nested = set().union(*(_bound_names(n) for n in ast.walk(node) if n is not node and isinstance(n, _SCOPES)))
    taken = _used_names(node) | _RESERVED
    fresh = (name for name in _short_names() if name not in taken)
    mapping = {name: next(fresh) for name in dict.fromkeys(targets) if len(name) > 1 and name not in nested}
    outer = {id(n) for n in ast.walk(node.generators[0].iter)}
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and n.id in mapping and id(n) not in outer:
            n.id = mapping[n.id]


def _shorten(tree: ast.Module, spelled: set[str]) -> None:
    methods = {id(stmt) for node in ast.walk(tree) if isinstance(node, ast.ClassDef) for stmt in node.body}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _rename_locals(node, _positional_parameters(node, id(node) in methods, spelled))
    for node in ast.walk(tree):
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            _rename_comprehension(node)


def _symbols(tree: ast.Module) -> dict[str, ast.AST]:
    """Top-level name -> the definition that binds it, where leaving it out changes nothing else: an undecorated
    function or class (a decorator may register it), a name of an import (`from m import a`, not __future__), or
    a name bound to a constant expression (no call, no attribute: evaluating it does nothing else)."""
    found = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not stmt.decorator_list:
            found[stmt.name] = stmt
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name) \
                and all(isinstance(n, _CONSTANT_PARTS) for n in ast.walk(stmt.value)):
            found[stmt.targets[0].id] = stmt
        elif isinstance(stmt, ast.ImportFrom) and stmt.module != "__future__":
            found.update({alias.asname or alias.name: alias for alias in stmt.names})
    return found


def _references(module: str, node: ast.AST, origins: dict[int, str]):
    """(module, name) of every top-level definition `node` may use: its names, and what its imports import
    (`origins`: the module each top-level `from m import name` imports from)."""
    if isinstance(node, ast.alias):
        yield origins[id(node)], node.name
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            yield module, n.id
        elif isinstance(n, ast.ImportFrom):
            yield from ((n.module, alias.name) for alias in n.names)


def _unused_definitions(trees: dict[str, ast.Module], entry: ast.Module) -> dict[str, list[ast.AST]]:
    """Per module, the top-level definitions (`_symbols`) no code that runs can reach.

    What runs: the `entry` code, each module's top-level statements other than definitions, and whatever a
    reachable definition uses. A name that any code reaches as an attribute or spells in a string (`getattr`)
    is kept in every module, so the answer errs on the side of keeping."""
    symbols = {module: _symbols(tree) for module, tree in trees.items()}
    origins = {id(alias): stmt.module for tree in trees.values() for stmt in tree.body
               if isinstance(stmt, ast.ImportFrom) for alias in stmt.names}
    everywhere = set()
    for tree in [*trees.values(), entry]:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                everywhere.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                everywhere.update(re.findall(r"\w+", node.value))
    pending = [(module, name) for module, defined in symbols.items() for name in defined if name in everywhere]
    pending.extend(_references("", entry, origins))
    for module, tree in trees.items():
        defined = [id(d) for d in symbols[module].values()]
        pending.extend(ref for stmt in tree.body if id(stmt) not in defined and not isinstance(stmt, ast.ImportFrom)
                       for ref in _references(module, stmt, origins))
    reached: set[tuple[str, str]] = set()
    while pending:
        key = pending.pop()
        definition = symbols.get(key[0], {}).get(key[1])
        if definition is not None and key not in reached:
            reached.add(key)
            pending.extend(_references(key[0], definition, origins))
    return {module: [d for name, d in defined.items() if (module, name) not in reached]
            for module, defined in symbols.items()}


def _drop(tree: ast.Module, unused: list[ast.AST]) -> None:
    gone = {id(node) for node in unused}
    body = []
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom):
            stmt.names = [alias for alias in stmt.names if id(alias) not in gone]
            if not stmt.names:
                continue
        elif id(stmt) in gone:
            continue
        body.append(stmt)
    tree.body = body


def _print(tree: ast.Module) -> str:
    """The code indented by one space per level; checked to parse to the same syntax tree as the usual print."""
    printed = ast.unparse(tree)
    small = re.sub(r"^(?:    )+", lambda m: " " * (len(m.group()) // 4), printed, flags=re.MULTILINE)
    if ast.dump(ast.parse(small)) != ast.dump(ast.parse(printed)):
        raise AssertionError("re-indenting changed the code (a multi-line literal?); golf.record.minify has a bug")
    return small


def _stripped(source: str) -> ast.Module:
    return _Strip().visit(ast.parse(source))


def minify(source: str) -> str:
    """One module's code re-printed smaller (see the module docstring)."""
    tree = _stripped(source)
    _shorten(tree, _spelled([tree]))
    return _print(tree)


def minify_modules(sources: dict[str, str], entry: str) -> dict[str, str]:
    """Every module minified, less the definitions that neither `entry` (the code that imports and runs them)
    nor any module's running code can reach."""
    trees = {name: _stripped(source) for name, source in sources.items()}
    entry_tree = ast.parse(entry)
    spelled = _spelled([*trees.values(), entry_tree])
    for tree in trees.values():
        _shorten(tree, spelled)
    for name, unused in _unused_definitions(trees, entry_tree).items():
        _drop(trees[name], unused)
    return {name: _print(tree) for name, tree in trees.items()}
