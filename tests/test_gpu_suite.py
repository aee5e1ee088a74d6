"""benchmarks/gpu_suite.sh in its CPU mode (what CI can run of it): every step at toy size under its own timeout,
every result under the output folder, a summary and one archive; and its deadline: with no budget left, every
step is reported as skipped and the exit status says the results are incomplete; the GPU mode refuses a machine
without CUDA before its first step."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from benchmarks.reference import find_reference
from golf.utils.environment import cpu_model

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "benchmarks" / "gpu_suite.sh"


def _suite(out: Path, cache: Path, *mode: str, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "GOLF_CACHE": str(cache), "PYTHON": sys.executable, **env}
    return subprocess.run(["bash", str(SUITE), *mode, str(out)], cwd=REPO, env=full_env, capture_output=True,
                          text=True, timeout=900)


def _statuses(summary: str) -> dict[str, str]:
    rows = [line.split(" | ") for line in summary.splitlines() if line.startswith("| ") and line.count(" | ") == 2]
    return {cells[0].removeprefix("| "): cells[1] for cells in rows[1:]}


def test_cpu_mode_runs_every_step_and_writes_everything_under_the_output_folder(demo_cache, tmp_path):
    out = tmp_path / "suite"
    committed = {p.name: p.read_bytes() for p in (REPO / "benchmarks" / "results").iterdir()}
    proc = _suite(out, demo_cache, "--cpu", GOLF_SUITE_BUDGET_S="600")  # generous: CI machines are shared
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary = (out / "summary.md").read_text()
    assert f"Device: cpu ({cpu_model()}, " in summary  # the machine the rows were measured on
    statuses = _statuses(summary)
    has_reference = find_reference() is not None and find_reference().is_file()
    assert statuses == {
        "data": "ok",
        "peer_model": "ok" if has_reference else
        "skipped: no official train_gpt.py (set GOLF_REFERENCE or copy it to .reference/)",
        "peer_script": "skipped: the official main() needs CUDA" if has_reference else
        "skipped: no official train_gpt.py (set GOLF_REFERENCE or copy it to .reference/)",
        "throughput_baseline": "ok", "throughput_recur_parallel": "ok", "ttt_eager": "ok", "ttt_phased_tilt": "ok",
        "ttt_compiled": "skipped: CPU mode (a cold C++ compile takes ~35 s here)",
    }
    throughput = [json.loads(line) for line in (out / "results" / "throughput.jsonl").read_text().splitlines()]
    assert [row["arch"] for row in throughput] == ["baseline 2x64", "recur_parallel 11x64"]
    eval_rows = [json.loads(line) for line in (out / "results" / "eval_ttt.jsonl").read_text().splitlines()]
    assert [(row["mode"], row["ttt"], row["ngram_tilt"]) for row in eval_rows] == [
        ("full", None, False), ("ttt", "sgd", False), ("ttt", "phased_lora_cpu", True)]
    if has_reference:
        [peer_row] = [json.loads(line) for line in (out / "results" / "peer.jsonl").read_text().splitlines()]
        assert peer_row["arch"] == "baseline 2x64" and abs(peer_row["delta_bpb"]) < 1e-3
    with tarfile.open(out / "suite.tar.gz") as archive:
        names = set(archive.getnames())
    assert {"summary.md", "results/throughput.jsonl", "results/eval_ttt.md", "logs/data.log",
            "logs/throughput_recur_parallel.log"} <= names
    assert {p.name: p.read_bytes() for p in (REPO / "benchmarks" / "results").iterdir()} == committed


def test_a_spent_budget_skips_every_step_and_fails(demo_cache, tmp_path):
    proc = _suite(tmp_path / "suite", demo_cache, "--cpu", GOLF_SUITE_BUDGET_S="0")
    assert proc.returncode == 1
    statuses = _statuses((tmp_path / "suite" / "summary.md").read_text())
    spent = "skipped: the suite's 0 s budget is spent"
    assert statuses["data"] == statuses["throughput_baseline"] == statuses["ttt_eager"] == spent
    assert statuses["ttt_phased_tilt"] == spent
    assert set(statuses.values()) - {spent} <= {"skipped: the official main() needs CUDA",
                                                "skipped: CPU mode (a cold C++ compile takes ~35 s here)",
                                                "skipped: no official train_gpt.py (set GOLF_REFERENCE or copy "
                                                "it to .reference/)"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine runs the GPU mode")
def test_gpu_mode_refuses_a_machine_without_cuda_before_any_step(demo_cache, tmp_path):
    proc = _suite(tmp_path / "suite", demo_cache)
    assert proc.returncode == 2
    assert "error: no CUDA device here (cpu (" in proc.stderr and "--cpu OUT_DIR" in proc.stderr
    assert not (tmp_path / "suite" / "summary.md").exists()
