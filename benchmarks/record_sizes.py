"""The counted code of every named recipe: the size of the train_gpt.py a run of it writes, plain and in both
compressed wrappers, and the time the wrapper adds before the script's own code starts.

    python -m benchmarks.record_sizes                      # every golf/conf/experiment/*.yaml, + pr1550 with legal TTT
    python -m benchmarks.record_sizes baseline pr1550:ttt=sgd
    python -m benchmarks.record_sizes --by-module baseline   # what each embedded module costs compressed

No data is read (data.root points nowhere, as tests/test_experiments.py composes them). The start-up time is
the median over repeated in-process runs of the file's top level (decompress, compile, install the module
finder; main() not called), minus the same for the plain file: what `python train_gpt.py` pays for the wrapper.
`--by-module` prices each embedded module by what leaving it out saves: lzma of all minified modules minus
lzma of all but that one (shared text compresses once, so the marginals sum to less than the whole).
"""

import statistics
import sys
import time

from benchmarks.common import REPO, load_config
from golf.record.closure import record_modules
from golf.record.minify import minify_modules
from golf.record.script import BOOTSTRAP, _compress, train_script

# recipe:override rows besides the recipes themselves (pr1550 ships pre-quant TTT, research only)
EXTRA_ROWS = ("pr1550:ttt=sgd",)
FORMATS = ("plain", "lzma", "brotli")
REPEATS = 7


def _overrides(name: str) -> list[str]:
    recipe, _, extra = name.partition(":")
    offline = [] if recipe.endswith(("cpu_demo", "_cpu")) else ["data.root=/nonexistent"]
    return [f"+experiment={recipe}", *offline, *([extra] if extra else [])]


def _startup_s(script: bytes) -> float:
    code = compile(script, "train_gpt.py", "exec")
    finders = list(sys.meta_path)
    times = []
    try:
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            exec(code, {"__name__": "record_sizes"})  # the top level only: not "__main__", so main() does not run
            times.append(time.perf_counter() - t0)
            sys.meta_path[:] = finders  # the script installs its module finder; this process keeps golf's own
    finally:
        sys.meta_path[:] = finders
    return statistics.median(times)


def measure(name: str) -> dict:
    row = {"recipe": name}
    for code_format in FORMATS:
        script, _ = train_script(load_config([*_overrides(name), f"export.code={code_format}"]))
        row[code_format] = len(script)
        row[f"{code_format}_startup_s"] = _startup_s(script)
    return row


def marginal_bytes(sources: dict[str, str]) -> list[tuple[str, int, int]]:
    """(module, lzma bytes that leaving it out saves, minified characters), the costliest first."""
    minified = minify_modules(sources, BOOTSTRAP)

    def size(names) -> int:
        return len(_compress("lzma", "".join(minified[n] for n in names).encode("utf-8")))

    whole = size(minified)
    rows = [(name, whole - size([n for n in minified if n != name]), len(minified[name])) for name in minified]
    return sorted(rows, key=lambda row: -row[1])


def by_module(name: str) -> None:
    modules = record_modules(load_config(_overrides(name)))
    rows = marginal_bytes({n: path.read_text(encoding="utf-8") for n, path in modules.items()})
    print(f"{name}: {len(rows)} modules")
    print("| module | lzma bytes it adds | minified chars |")
    print("|---|---:|---:|")
    for module, added, chars in rows:
        print(f"| {module} | {added:,} | {chars:,} |")


def main(names: list[str]) -> None:
    if names[:1] == ["--by-module"]:
        for name in names[1:] or ["baseline"]:
            by_module(name)
        return
    names = names or [*sorted(p.stem for p in (REPO / "golf" / "conf" / "experiment").glob("*.yaml")), *EXTRA_ROWS]
    print("| recipe | lzma (B) | brotli (B) | plain (B) | start-up added: lzma / brotli (ms) |")
    print("|---|---:|---:|---:|---:|")
    for name in names:
        r = measure(name)
        added = [1000 * (r[f"{f}_startup_s"] - r["plain_startup_s"]) for f in ("lzma", "brotli")]
        label = name.replace(":", " + ")
        print(f"| {label} | {r['lzma']:,} | {r['brotli']:,} | {r['plain']:,} | {added[0]:.0f} / {added[1]:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
