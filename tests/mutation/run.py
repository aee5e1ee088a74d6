"""Mutation check, run on demand (not in CI): apply each curated mutant alone to a temporary copy of the tree,
run the tests mapped to it, and report which mutants the tests kill.

    python -m tests.mutation.run [--only SUBSTRING ...] [--tree DIR] [--timeout S] [--keep]

The working tree is never modified: the copy holds the files git tracks plus untracked, non-ignored ones, and
the tests run there with PYTHONPATH pointing at it (so subprocesses import the mutated golf too). First the
mapped tests run once on the unmutated copy and must pass; then each mutant is applied, its tests run with
-x, and the original file is put back. Exit status: 0 when every mutant is killed, 1 when some survive, 2
when a snippet no longer matches the code or the unmutated tests fail.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .mutants import MUTANTS, Mutant

REPO = Path(__file__).resolve().parents[2]
PYTEST = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts="]
NO_TESTS_COLLECTED = 5


def stale(mutants: list[Mutant], tree: Path) -> list[str]:
    """Mutants whose original snippet does not occur exactly once in their file (the code moved), or whose
    mutated file does not compile (a syntax error would be a kill that proves nothing)."""
    problems = []
    for m in mutants:
        path = tree / m.path
        source = path.read_text(encoding="utf-8") if path.is_file() else ""
        count = source.count(m.original)
        if count != 1:
            problems.append(f"{m.path}: {m.name!r}: the original snippet occurs {count} times, expected once")
            continue
        try:
            compile(source.replace(m.original, m.mutated), m.path, "exec")
        except SyntaxError as exc:
            problems.append(f"{m.path}: {m.name!r}: the mutated file does not compile ({exc.msg}, line {exc.lineno})")
    return problems


def copy_tree(tree: Path, dest: Path) -> None:
    """The files git tracks plus untracked, non-ignored ones (no build outputs, no run dirs)."""
    listed = subprocess.run(["git", "-C", str(tree), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = tree / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def run_tests(copy: Path, tests: tuple[str, ...], timeout: float) -> tuple[int | None, float, str]:
    """(pytest exit status or None on timeout, seconds, output tail)."""
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([*PYTEST, *tests], cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return None, time.perf_counter() - t0, str(exc.stdout or "")[-2000:]
    return proc.returncode, time.perf_counter() - t0, (proc.stdout + proc.stderr)[-2000:]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.mutation.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", default=[], help="run the mutants whose name contains one of these")
    p.add_argument("--tree", type=Path, default=REPO, help="the tree to mutate (a git checkout; default: this one)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per test run; a timeout counts as killed")
    p.add_argument("--keep", action="store_true", help="keep the temporary copy (its path is printed)")
    args = p.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or any(s in m.name for s in args.only)]
    if not mutants:
        print(f"error: no mutant name contains any of {args.only}; see tests/mutation/mutants.py", file=sys.stderr)
        return 2
    problems = stale(mutants, args.tree)
    if problems:
        print("error: stale or broken mutants, fix their snippets in tests/mutation/mutants.py:\n  "
              + "\n  ".join(problems), file=sys.stderr)
        return 2
    copy = Path(tempfile.mkdtemp(prefix="golf-mutation-"))
    try:
        copy_tree(args.tree, copy)
        files = {t.split("::")[0] for m in mutants for t in m.tests}
        missing = sorted(f for f in files if not (copy / f).is_file())
        if missing:
            print(f"error: mapped test files not in the tree: {', '.join(missing)}", file=sys.stderr)
            return 2
        everything = tuple(dict.fromkeys(t for m in mutants for t in m.tests))
        status, seconds, tail = run_tests(copy, everything, args.timeout * len(mutants))
        print(f"unmutated: {len(everything)} test selections {'pass' if status == 0 else 'FAIL'} ({seconds:.0f}s)")
        if status != 0:
            print(tail, file=sys.stderr)
            print("error: the mapped tests fail without any mutant; fix them first", file=sys.stderr)
            return 2
        survivors, t_start = [], time.perf_counter()
        for i, m in enumerate(mutants, 1):
            target = copy / m.path
            original = target.read_text(encoding="utf-8")
            target.write_text(original.replace(m.original, m.mutated), encoding="utf-8")
            try:
                status, seconds, tail = run_tests(copy, m.tests, args.timeout)
            finally:
                target.write_text(original, encoding="utf-8")
            if status == NO_TESTS_COLLECTED:
                print(tail, file=sys.stderr)
                print(f"error: no tests collected for {m.name!r}: {' '.join(m.tests)}", file=sys.stderr)
                return 2
            verdict = "killed (timeout)" if status is None else "killed" if status != 0 else "SURVIVED"
            print(f"[{i:2d}/{len(mutants)}] {verdict:16s} {seconds:6.1f}s  {m.name}  ({m.path})", flush=True)
            if status == 0:
                survivors.append(m)
        killed = len(mutants) - len(survivors)
        print(f"\nmutation score: {killed}/{len(mutants)} killed ({100 * killed / len(mutants):.0f}%) in "
              f"{time.perf_counter() - t_start:.0f}s")
        for m in survivors:
            print(f"  survived: {m.name} ({m.path}); tests: {' '.join(m.tests)}")
        return 1 if survivors else 0
    finally:
        if args.keep:
            print(f"copy kept at {copy}")
        else:
            shutil.rmtree(copy, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
