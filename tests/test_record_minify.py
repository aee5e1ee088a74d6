"""The wrapped record script's minifier: what it drops and renames, and that the code computes the same.
Whole records run through it in tests/test_record_script.py (byte-identical artifacts, the same val_bpb)."""

import ast
import re

from golf.config.compose import compose, typed
from golf.record.closure import module_file
from golf.record.minify import minify, minify_modules

# Each function is a way renaming a local could change what a name means.
LOCALS = '''
import math
TOTAL = 3


def scaled(values, factor=2):
    running_sum = 0
    for value in values:
        running_sum += value * factor
    return running_sum


def rebinds_param(total, scale=2):
    scale = scale + 1
    return total * scale


def counter():
    count = 0

    def bump():
        nonlocal count
        count += 1
        return count
    return bump


def closure_reader(width):
    offset = width + 1
    return [offset * i for i in range(3)], (lambda extra: offset + extra)(1)


def param_shadow():
    step = 10

    def inner(step):
        return step * 2
    return inner(3) + step


def caught():
    try:
        raise ValueError("boom")
    except ValueError as error:
        message = str(error)
    return message


def introspective():
    hidden = 4
    return locals()["hidden"]


def uses_global():
    result = TOTAL + math.floor(2.5)
    return result


def comprehensions(rows):
    echo = [rows for rows in rows]  # the first iterable is the enclosing function's `rows`
    pairs = {row: [row * column for column in range(row)] for row in rows}
    rebound = [(lambda item: item * 10)(item + 1) for item in rows]
    return pairs, echo, rebound, [lambda: width for width in rows][0]()


def keyword_caller():
    return scaled(values=[3], factor=3)


def keyword_only(base, *, bonus):
    return base + bonus


def shifted(amount, shift):
    return amount + shift


def unpacked():
    return shifted(**{"amount": 1, "shift": 2})  # names in a mapping's keys


def announce(epoch, message):
    return "epoch", "message: " + message  # a string that could be a `**` key keeps `epoch`; a message does not


class Table(dict):
    def get(self, key, default=None):  # dict's own method: whoever calls it may name its arguments
        return dict.get(self, key, default)

    def lookup(self, wanted):
        return self.get(wanted, -1)


def table():
    return Table(a=1).lookup("a")


@call_by_name
def sized(size):
    return size * 2
'''
CALLS = {"scaled": ([1, 2],), "rebinds_param": (4,), "counter": (), "closure_reader": (2,), "param_shadow": (),
         "caught": (), "introspective": (), "uses_global": (), "keyword_caller": (), "table": (), "sized": (),
         "comprehensions": ([1, 3],), "unpacked": (), "announce": (7, "-")}


def _run(source: str) -> dict:
    namespace = {"call_by_name": lambda function: lambda: function(size=4)}  # a decorator from a library
    exec(compile(source, "module", "exec"), namespace)
    results = {name: namespace[name](*args) for name, args in CALLS.items()}
    results["counter"] = (results["counter"](), results["counter"]())
    # callers outside the module: library code naming a method's arguments, and a keyword-only argument
    results["named"] = namespace["Table"](b=2).get(key="b", default=0), namespace["keyword_only"](1, bonus=5)
    return results


def _words(code: str) -> set[str]:
    return set(re.findall(r"\w+", code))


def _names(code: str) -> set[str]:
    """The names code binds and reads (what its strings say left out)."""
    tree = ast.parse(code)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)} | {
        n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.ExceptHandler))}


def test_locals_get_short_names_and_the_code_computes_the_same():
    small = minify(LOCALS)
    assert _run(small) == _run(LOCALS)
    words = _names(small)
    assert not words & {"running_sum", "value", "offset", "message", "error", "result", "total", "scale", "width",
                        "base", "wanted", "row", "column"}, small
    # parameters some call names (keyword arguments, keyword-only ones, a library method's), nonlocal names,
    # names a nested scope binds again, and the locals of a function that reads locals() keep theirs
    kept = {"values", "factor", "bonus", "item", "key", "default", "count", "step", "hidden", "TOTAL", "math"}
    assert kept <= words and {"amount", "shift"} <= words, small
    assert "def announce(epoch, a):" in small, small


def test_minifying_drops_docstrings_annotations_and_annotation_only_imports():
    source = module_file("golf.config.derived").read_text()
    small = minify(source)
    assert '"""' not in small and "-> int" not in small and len(small) < len(source)
    assert "TYPE_CHECKING:" not in small and "golf.config.schema" not in small  # the annotation-only import
    assert "\n if a.train.grad_accum_steps > 0:\n  return a.train.grad_accum_steps" in small  # a space a level
    namespace = {}
    exec(compile(small, "derived", "exec"), namespace)
    cfg = typed(compose(["+experiment=cpu_demo", "paths.data_root=/tmp", "data.root=/tmp/demo"], hydra_runtime=True))
    assert namespace["eval_batch_seqs"](cfg, 1) == 256 and namespace["grad_accum_steps"](cfg, 4) == 1


MODULES = {
    "pkg_a": '''
from __future__ import annotations
import json
from pkg_b import used_helper, unused_helper


def unused_function() -> Kept:
    return unused_helper()


def reached_by_attribute():
    return 1


def reached_by_string():
    return 2


class Kept:
    def method(self):
        return used_helper()


def lazy():
    from pkg_c import loaded_lazily
    return loaded_lazily()


REGISTRY = dict(kept=Kept)  # a call: running code
''',
    "pkg_b": '''
HINT = "run the " + "fixer"
UNREAD_TABLE = {"a": (1, -2)}
READ_LIMIT = 3


class Oops(Exception):
    def __init__(self, problem, fix=""):
        super().__init__(problem + fix)


def used_helper():
    if READ_LIMIT < 0:
        raise Oops("negative", fix=HINT)
    return 3


def unused_helper():
    return 4


@register
def registered():
    return 5
''',
    "pkg_c": '''
def loaded_lazily():
    return 6


def never_loaded():
    return 7
''',
}
ENTRY = 'import pkg_a\nfrom pkg_a import lazy\npkg_a.reached_by_attribute()\ngetattr(pkg_a, "reached_by_string")()\n'


def test_definitions_no_running_code_reaches_are_left_out():
    small = {name: _words(code) for name, code in minify_modules(MODULES, ENTRY).items()}
    assert {"unused_function", "unused_helper", "never_loaded"}.isdisjoint(small["pkg_a"] | small["pkg_b"]
                                                                            | small["pkg_c"])
    assert {"__future__", "json", "used_helper", "reached_by_attribute", "reached_by_string", "Kept", "lazy"} \
        <= small["pkg_a"]
    assert {"used_helper", "registered"} <= small["pkg_b"]  # a decorator may register what it wraps
    # a raise leaves golf's fix out, and constants nothing reads any more go too
    assert {"READ_LIMIT", "Oops", "negative"} <= small["pkg_b"]
    assert not {"HINT", "UNREAD_TABLE", "fixer"} & small["pkg_b"]
    assert "loaded_lazily" in small["pkg_c"]  # imported inside a reachable function
