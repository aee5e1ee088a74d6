"""train_gpt.py: the one self-contained file that trains and scores a run, and whose size is its bytes_code.

It embeds the golf modules the run's config uses (golf.record.closure), its config without the machine-
or seed-specific keys, and its data layout; a meta-path finder serves the embedded modules ahead of any
installed golf, so the file needs only torch, numpy and sentencepiece (and the compressor's package). The
same file serves every seed of a config (SEED comes from the environment). `export.code` picks the form:
`plain` keeps each module's source verbatim; `lzma` and `brotli` minify every module (docstrings and
function annotations dropped, comments gone in the re-print) and wrap the whole script in a self-extracting
line, as records ship their code.
"""

import ast
import dataclasses
import lzma
import os
from enum import Enum

from golf.record.closure import record_modules

SCRIPT_NAME = "train_gpt.py"
# Keys of the config that say where and under which name a run ran, not what it computes.
RUN_ONLY_KEYS = ("seed", "run_name", "sweep_name", "resume", "paths", "logger", "launcher")

_BOOTSTRAP = '''import importlib.abc, importlib.util, sys


class EmbeddedGolf(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name in MODULES:
            return importlib.util.spec_from_loader(name, self, is_package=MODULES[name][0])

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(compile(MODULES[module.__name__][1], "<golf " + module.__name__ + ">", "exec"), module.__dict__)


sys.meta_path.insert(0, EmbeddedGolf())
if __name__ == "__main__":
    from golf.record.entry import main

    sys.exit(main(CONFIG, DATA))
'''

_HEADER = '''"""golf record script: trains, quantizes, writes final_model.golf, reloads and scores it.
torchrun --standalone --nproc_per_node=8 train_gpt.py (DATA_PATH, TOKENIZER_PATH, SEED, RUN_ID from the environment)
"""
'''

# The compressed script rides in a latin-1 string literal: one file byte per payload byte (base85, the
# usual way, costs a quarter more); only NUL, newline, carriage return, quote and backslash are escaped.
_WRAPPER = "# -*- coding: latin-1 -*-\nimport {0};exec({0}.decompress('{{}}'.encode('l1')))\n"
_ESCAPES = {0: "\\x00", 10: "\\n", 13: "\\r", 39: "\\'", 92: "\\\\"}


def _plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def embedded_config(cfg) -> tuple[dict, dict]:
    """(CONFIG, DATA): what the run computes, and where its data lies relative to DATA_PATH."""
    config = {k: v for k, v in _plain(cfg).items() if k not in RUN_ONLY_KEYS}
    d = cfg.data
    config["data"] = {"name": d.name, "vocab_size": d.vocab_size}
    data = {"root": os.path.join(".", "data", "datasets", os.path.basename(os.path.normpath(d.root))),
            "train": os.path.basename(d.train_pattern), "val": os.path.basename(d.val_pattern),
            "tokenizer": os.path.relpath(d.tokenizer_path, d.root)}
    if d.val_bytes_pattern:  # a transformed dataset's byte sidecar (CaseOps): BPB counts the original bytes
        data["val_bytes"] = os.path.basename(d.val_bytes_pattern)
    return config, data


class _Minifier(ast.NodeTransformer):
    """Drops docstrings and function annotations (class annotations stay: dataclasses need them)."""

    def _body(self, node):
        self.generic_visit(node)
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            body = body[1:] or [ast.Pass()]
        node.body = body
        return node

    def visit_FunctionDef(self, node):
        node.returns = None
        for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs, node.args.vararg,
                    node.args.kwarg]:
            if arg is not None:
                arg.annotation = None
        return self._body(node)

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_ClassDef = _body
    visit_Module = _body


def minify(source: str) -> str:
    return ast.unparse(_Minifier().visit(ast.parse(source)))


def train_script(cfg) -> tuple[bytes, dict[str, int]]:
    """The exact bytes of the run's train_gpt.py, and the source size of each module it embeds."""
    code_format = str(cfg.export.code)
    modules = record_modules(cfg)
    entries = []
    for name, path in modules.items():
        source = path.read_text(encoding="utf-8")
        if code_format != "plain":
            source = minify(source)
        entries.append(f"    {name!r}: ({path.name == '__init__.py'}, {source!r}),\n")
    config, data = embedded_config(cfg)
    script = (("" if code_format != "plain" else _HEADER) + f"CONFIG = {config!r}\nDATA = {data!r}\nMODULES = {{\n"
              + "".join(entries) + "}\n" + _BOOTSTRAP)
    files = {name: path.stat().st_size for name, path in modules.items()}
    if code_format == "plain":
        return script.encode("utf-8"), files
    payload = _compress(code_format, script.encode("utf-8")).decode("latin-1").translate(_ESCAPES)
    return _WRAPPER.format(code_format).format(payload).encode("latin-1"), files


def _compress(code_format: str, raw: bytes) -> bytes:
    if code_format == "lzma":
        return lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME)
    import brotli  # the brotli extra; only a brotli-wrapped script needs it

    return brotli.compress(raw, quality=11)
