"""Every recorded peer run pooled: golf/official over all ABBA pairs of the same device, precision and config.

    python -m benchmarks.peer_pool [benchmarks/results/peer.jsonl]

One peer row holds a few repeats, and on a shared CPU single pairs spread by more than any code difference
(0.93-1.15 for the same command), so one row's median cannot settle a 1% question. Pooled here: run i of golf
paired with run i of the official side of the same row (they ran back to back, ABBA), the log ratio of each
pair, their mean as a geometric-mean ratio and a 95% bootstrap interval over pairs (10,000 resamples, fixed
seed), for process CPU time (robust against other jobs with train.threads=1) and the wall clock.
"""

import json
import math
import random
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from benchmarks.common import REPO

RESAMPLES = 10_000


def pair_log_ratios(row: dict, clock: str) -> list[float]:
    key = "runs_cpu_ms" if clock == "cpu" else "runs_ms"
    golf, official = row[key]["golf"], row[key]["official"]
    return [math.log(g / o) for g, o in zip(golf, official, strict=True)]


def geometric_ratio(logs: list[float], seed: int = 0) -> tuple[float, float, float]:
    """(ratio, low, high): exp of the mean log ratio and its 95% percentile-bootstrap interval."""
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(logs, k=len(logs))) for _ in range(RESAMPLES))
    low, high = means[int(0.025 * RESAMPLES)], means[int(0.975 * RESAMPLES) - 1]
    return math.exp(statistics.fmean(logs)), math.exp(low), math.exp(high)


def pool(rows: list[dict]) -> list[dict]:
    groups = defaultdict(list)
    for row in rows:
        groups[(row["device"], row["precision"], row["arch"], row["seq_len"], row["batch_tokens"])].append(row)
    pooled = []
    for (device, precision, arch, seq_len, batch_tokens), members in groups.items():
        entry = {"device": device, "precision": precision, "arch": arch, "seq_len": seq_len,
                 "batch_tokens": batch_tokens, "rows": len(members)}
        for clock in ("cpu", "wall"):
            logs = [v for row in members for v in pair_log_ratios(row, clock)]
            entry["pairs"] = len(logs)
            entry[clock] = geometric_ratio(logs)
        pooled.append(entry)
    return pooled


def main(argv: list[str]) -> None:
    path = Path(argv[0]) if argv else REPO / "benchmarks" / "results" / "peer.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    print("| device | arch | seq | tokens/step | precision | rows | pairs | golf/official CPU time (95% CI) "
          "| golf/official wall (95% CI) |")
    print("|---|---|---:|---:|---|---:|---:|---|---|")
    for e in pool(rows):
        cells = [f"{r:.3f} ({lo:.3f}-{hi:.3f})" for r, lo, hi in (e["cpu"], e["wall"])]
        print(f"| {e['device']} | {e['arch']} | {e['seq_len']} | {e['batch_tokens']:,} | {e['precision']} | "
              f"{e['rows']} | {e['pairs']} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main(sys.argv[1:])
