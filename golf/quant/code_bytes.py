"""bytes_code: the source needed to rebuild and evaluate a model from its artifact.

The official rule counts the bytes of the one script that trains and evaluates. golf's honest
equivalent is the static import closure, inside the golf package, of the modules that rebuild a
model from the artifact and score it: the model registry (every architecture), the artifact
reader with its dequantizers and compressors, and the evaluator with the byte accounting. Package
`__init__.py` files on the way are included; third-party packages (torch, numpy, sentencepiece)
are free, as in the official rule. Training, logging and config code are not needed to evaluate
and are not counted.
"""

import ast
import importlib.util
from pathlib import Path

INFERENCE_ROOTS = ("golf.models.registry", "golf.quant.artifact", "golf.eval.full")


def _module_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, AttributeError):  # `golf.x.y` where golf.x is a module, not a package
        return None
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


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


def inference_closure(roots=INFERENCE_ROOTS) -> dict[str, Path]:
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


def count_code_bytes(roots=INFERENCE_ROOTS) -> tuple[int, dict[str, int]]:
    files = {name: path.stat().st_size for name, path in inference_closure(roots).items()}
    return sum(files.values()), files
