"""bytes_code: the size of the one script that rebuilds a model from its artifact and scores it.

The official rule counts the bytes of the single script a record ships. golf builds that script
for real: `evaluation_script(cfg)` embeds, verbatim, every golf module in the static import
closure of `golf.reproduce` (artifact reader with its dequantizers and compressors, model
registry with every architecture, val loader, tokenizer checks, byte accounting, evaluator),
plus the evaluation-time code the run's config selects (its test-time training package and a
non-default eval module). `python -m golf.export` writes exactly these bytes, and `bytes_code`
is their length. Third-party packages (torch, numpy, sentencepiece) are free, as in the official
rule; training, logging and config code are not needed to evaluate and are not counted.
"""

import ast
import importlib.util
from pathlib import Path

BASE_ROOTS = ("golf.reproduce",)
TTT_ENTRY = "golf.ttt.session"  # the protocols and their ledger; not golf.ttt's CLI or plots
SCRIPT_NAME = "score_artifact.py"

_HEADER = '''"""golf: rebuild a model from its artifact and score it (val_loss, val_bpb); written by golf.export.

Every golf module the evaluation needs is embedded below, verbatim; only torch, numpy and
sentencepiece are required. This file's size is the run's bytes_code.
usage: python {script} ARTIFACT --val-pattern GLOB --tokenizer MODEL --seq-len N
"""
import importlib.abc
import importlib.util
import sys

MODULES = {{
'''

_FOOTER = '''}


class EmbeddedGolf(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the golf package from MODULES, ahead of any installed golf."""

    def find_spec(self, name, path=None, target=None):
        if name in MODULES:
            return importlib.util.spec_from_loader(name, self, is_package=MODULES[name][0])
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(compile(MODULES[module.__name__][1], f"<embedded {module.__name__}>", "exec"), module.__dict__)


sys.meta_path.insert(0, EmbeddedGolf())

if __name__ == "__main__":
    from golf.reproduce import main

    sys.exit(main())
'''


def code_roots(cfg=None) -> tuple[str, ...]:
    """The modules to embed for a run: the scorer, plus its config's test-time training and eval code."""
    roots = list(BASE_ROOTS)
    if cfg is not None:
        ttt = _value(cfg.ttt.name)
        if ttt != "none" and _module_file(TTT_ENTRY) is not None:
            roots.append(TTT_ENTRY)
        evaluator = f"golf.eval.{_value(cfg.eval.name)}"
        if _value(cfg.eval.name) != "full" and _module_file(evaluator) is not None:
            roots.append(evaluator)
    return tuple(roots)


def _value(option) -> str:
    return option.value if hasattr(option, "value") else str(option)


def _module_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, AttributeError):  # `golf.x.y` where golf.x is a module, not a package
        return None
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


def _package_modules(package: str) -> list[str]:
    """Every module of a package: a package's __init__ need not import its submodules."""
    folder = _module_file(package).parent
    return [package] + [f"{package}.{p.stem}" for p in sorted(folder.glob("*.py")) if p.stem != "__init__"]


def _golf_imports(path: Path, module: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.rsplit(".", node.level)[0]
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "golf" or name.startswith("golf.")}


def inference_closure(roots=BASE_ROOTS) -> dict[str, Path]:
    """Module name -> source file for every golf module reachable from `roots` (parents included)."""
    closure: dict[str, Path] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in closure:
            continue
        path = _module_file(name)
        if path is None:  # `from golf.x import y` where y is a function, not a module
            continue
        closure[name] = path
        parts = name.split(".")
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        pending.extend(_golf_imports(path, name if path.name != "__init__.py" else name + ".__init__"))
    return dict(sorted(closure.items()))


def evaluation_script(cfg=None) -> tuple[bytes, dict[str, int]]:
    """The self-contained scoring script for a run, and the source size of each module it embeds."""
    closure = inference_closure(code_roots(cfg))
    entries = []
    for name, path in closure.items():
        source = path.read_text(encoding="utf-8")
        entries.append(f"    {name!r}: ({path.name == '__init__.py'}, {source!r}),\n")
    text = _HEADER.format(script=SCRIPT_NAME) + "".join(entries) + _FOOTER
    files = {name: path.stat().st_size for name, path in closure.items()}
    return text.encode("utf-8"), files


def count_code_bytes(cfg=None) -> tuple[int, dict[str, int]]:
    """bytes_code (the size of `evaluation_script(cfg)`) and the embedded modules' source sizes."""
    script, files = evaluation_script(cfg)
    return len(script), files
