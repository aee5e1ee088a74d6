"""train_gpt.py: the one self-contained file that trains and scores a run, and whose size is its bytes_code.

It embeds the golf modules the run's config uses (golf.record.closure), its config without the machine-
or seed-specific keys and without the keys that code never reads, and its data layout; a meta-path finder
serves the embedded modules ahead of any installed golf, so the file needs only torch, numpy and sentencepiece
(and the compressor's package). The same file serves every seed of a config (SEED comes from the environment).
`export.code` picks the form: `plain` keeps each module's source verbatim; `lzma` and `brotli` minify every
module (golf.record.minify: no docstrings, annotations or comments, short local names, no definition that
nothing reaches) and wrap the
whole script in a self-extracting line, as records ship their code.
The config is plain data: the script reads it as attributes (golf.record.entry), without golf's typed schema.
"""

import ast
import dataclasses
import lzma
import os
import re
from enum import Enum

from golf.record.closure import imports, record_modules
from golf.record.minify import minify, minify_modules

SCRIPT_NAME = "train_gpt.py"
# Keys of the config that say where and under which name a run ran, not what it computes.
RUN_ONLY_KEYS = ("seed", "run_name", "sweep_name", "resume", "paths", "logger", "launcher")

BOOTSTRAP = '''import importlib.abc, importlib.util, sys


class EmbeddedGolf(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        package = any(module.startswith(name + ".") for module in MODULES)
        if name in MODULES or package:  # a package with no code of its own has no entry
            return importlib.util.spec_from_loader(name, self, is_package=package)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(compile(MODULES.get(module.__name__, ""), "<golf " + module.__name__ + ">", "exec"), module.__dict__)


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
# usual way, costs a quarter more). Inside triple quotes only a backslash, a carriage return (which reading
# the source would turn into a newline), a NUL (which source may not hold) and a quote that could close the
# literal need an escape.
_WRAPPER = "# -*- coding: latin-1 -*-\nimport {0};exec({0}.decompress('''{{}}'''.encode('l1')))\n"
_OCTAL_DIGITS = b"01234567"


def _literal(payload: bytes) -> str:
    """`payload` as the body of a triple-quoted latin-1 literal that evaluates back to it."""
    out = []
    for i, byte in enumerate(payload):
        after = payload[i + 1:i + 2]
        if byte == 92:
            out.append("\\\\")
        elif byte == 13:
            out.append("\\r")
        elif byte == 0:  # \0 is one octal escape only when no octal digit follows
            out.append("\\x00" if after and after in _OCTAL_DIGITS else "\\0")
        elif byte == 39 and after in (b"'", b""):  # no run of three quotes, no quote before the closing ones
            out.append("\\'")
        else:
            out.append(chr(byte))
    return "".join(out)


def _plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _code_words(minified) -> tuple[set[str], tuple[str, ...]]:
    """Every word of the minified modules (no docstrings, no comments), and the constant start of every f-string."""
    words: set[str] = set()
    prefixes: set[str] = set()
    for code in minified:
        words.update(re.findall(r"\w+", code))
        prefixes.update(node.values[0].value for node in ast.walk(ast.parse(code)) if isinstance(node, ast.JoinedStr)
                        and node.values and isinstance(node.values[0], ast.Constant))
    return words, tuple(sorted(prefixes))


def _read_by(group: dict, words: set[str], prefixes: tuple[str, ...]) -> dict:
    return {k: _read_by(v, words, prefixes) if isinstance(v, dict) else v for k, v in group.items()
            if k in words or k.startswith(prefixes)}


def embedded_config(cfg, minified) -> tuple[dict, dict]:
    """(CONFIG, DATA): what the run computes, and where its data lies relative to DATA_PATH.

    CONFIG holds the keys the embedded code (`minified`, each module's minified source) can read: a key no word
    of the code names, and that no f-string of it can build (`getattr(quant, f"bits_{category}")`), is never
    read, so it is left out. The arch
    group stays whole: the artifact stores every arch field and the model is rebuilt from them."""
    words, prefixes = _code_words(minified)
    config = {k: v if k == "arch" else _read_by(v, words, prefixes) for k, v in _plain(cfg).items()
              if k not in RUN_ONLY_KEYS}
    d = cfg.data
    config["data"] = {"name": d.name, "vocab_size": d.vocab_size}
    data = {"root": os.path.join(".", "data", "datasets", os.path.basename(os.path.normpath(d.root))),
            "train": os.path.basename(d.train_pattern), "val": os.path.basename(d.val_pattern),
            "tokenizer": os.path.relpath(d.tokenizer_path, d.root)}
    if d.val_bytes_pattern:  # a transformed dataset's byte sidecar (CaseOps): BPB counts the original bytes
        data["val_bytes"] = os.path.basename(d.val_bytes_pattern)
    return config, data


def _dependencies_first(modules: dict) -> list[str]:
    """Module names with every module after the ones it imports: code that works together sits together, which
    compresses a little better than alphabetical order."""
    ordered: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name not in seen:
            seen.add(name)
            for imported in sorted(imports(name)[0] & modules.keys()):
                visit(imported)
            ordered.append(name)

    for name in modules:
        visit(name)
    return ordered


def _source_literal(source: str) -> str:
    """A module's source as a literal: raw and triple-quoted (its own lines, no escapes) unless it could end one."""
    if "'''" in source or source.endswith(("\\", "'")):
        return repr(source)
    return f"r'''{source}'''"


def train_script(cfg) -> tuple[bytes, dict[str, int]]:
    """The exact bytes of the run's train_gpt.py, and the source size of each module it embeds."""
    code_format = str(cfg.export.code)
    modules = record_modules(cfg)
    sources = {name: path.read_text(encoding="utf-8") for name, path in modules.items()}
    minified = minify_modules(sources, BOOTSTRAP)
    embedded = sources if code_format == "plain" else minified
    # a package with no code of its own needs no entry: the finder knows it from its modules' names
    entries = [f"    {name!r}: {_source_literal(embedded[name])},\n" for name in _dependencies_first(modules)
               if embedded[name].strip() or not any(other.startswith(name + ".") for other in modules)]
    config, data = embedded_config(cfg, minified.values())
    header, bootstrap = (_HEADER, BOOTSTRAP) if code_format == "plain" else ("", minify(BOOTSTRAP))
    script = (header + f"CONFIG = {config!r}\nDATA = {data!r}\nMODULES = {{\n" + "".join(entries) + "}\n"
              + bootstrap)
    files = {name: path.stat().st_size for name, path in modules.items()}
    if code_format == "plain":
        return script.encode("utf-8"), files
    payload = _literal(_compress(code_format, script.encode("utf-8")))
    return _WRAPPER.format(code_format).format(payload).encode("latin-1"), files


def _compress(code_format: str, raw: bytes) -> bytes:
    if code_format == "lzma":  # the .lzma container (13 header bytes), tuned for text; lzma.decompress detects it
        return lzma.compress(raw, format=lzma.FORMAT_ALONE, filters=[
            {"id": lzma.FILTER_LZMA1, "preset": 9 | lzma.PRESET_EXTREME, "lc": 3, "lp": 0, "pb": 0, "nice_len": 273}])
    import brotli  # the brotli extra; only a brotli-wrapped script needs it

    return brotli.compress(raw, quality=11)
