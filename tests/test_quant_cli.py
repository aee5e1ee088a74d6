"""End to end: a run exporting with GPTQ, then `python -m golf.quant` re-quantizing its weights."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST_RUN, job_dirs, run_golf

# Quantize the 64-dim test model's 64x64 matrices too (the configs keep tensors <= 4096 float).
SMALL = ["quant.keep_float_max_numel=1024", "quant.calib_seqs=8"]
QAT = ["quant.qat_threshold=0.9"]  # the 6-step run's warmdown crosses it


def requant(job: Path, args: list[str], cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GOLF_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "golf.quant", str(job), *args], check=False, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def gptq_job(tmp_path_factory, demo_cache) -> Path:
    out = tmp_path_factory.mktemp("quant_run")
    proc = run_golf([*FAST_RUN, "quant=gptq_int6", *SMALL, *QAT], out, demo_cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return job_dirs(out)[0]


def test_run_records_the_export(gptq_job):
    res = json.loads((gptq_job / "results.json").read_text())
    q = res["quant"]
    assert q["scheme"] == "gptq" and q["calibration"].startswith("train:") and "_val_" not in q["calibration"]
    assert q["bits"] == {"embed": 8, "attn": 6, "mlp": 6, "other": 6, "gate": 16} and q["quant_s"] > 0
    assert q["calib_tokens"] == 8 * 64 and q["params_by_bits"]["6"] > 0
    a = res["artifact"]
    assert a["bytes_model"] == (gptq_job / "artifact" / "model.golf").stat().st_size
    assert a["bytes_total"] == a["bytes_model"] + a["bytes_code"] and a["compressor"] == "zstd-22"
    assert res["metrics"]["val_bpb_prequant"] != res["metrics"]["val_bpb"]
    assert (gptq_job / "prequant.pt").is_file()
    assert "qat: on at step" in (gptq_job / "train.log").read_text()


def test_requant_reload_equals_in_memory_and_matches_the_run(gptq_job, demo_cache):
    proc = requant(gptq_job, ["quant=gptq_int6", *SMALL], demo_cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "golf.quant | gptq_int6 | val_bpb" in proc.stdout
    res = json.loads(next((gptq_job / "requant").glob("gptq_int6-*/results.json")).read_text())
    run = json.loads((gptq_job / "results.json").read_text())
    m = res["metrics"]
    assert m["val_bpb"] == m["val_bpb_in_memory"]
    # the same weights, config and calibration give the very artifact the run wrote
    assert res["artifact"]["sha256"] == run["artifact"]["sha256"] and m["val_bpb"] == run["metrics"]["val_bpb"]
    assert m["val_bpb_prequant"] == run["metrics"]["val_bpb_prequant"]


def test_over_budget_fails_with_the_overshoot_and_the_fitter_fixes_it(gptq_job, demo_cache):
    # the limit sits 150 B under this very re-export (its own train_gpt.py included): over, and within what
    # zeroing the cheapest +-1 codes of the 64-dim test model can win back
    assert requant(gptq_job, ["quant=gptq_int6", *SMALL, *QAT], demo_cache).returncode == 0
    limit = json.loads(_latest(gptq_job).read_text())["artifact"]["bytes_total"] - 150
    budget = [*QAT, f"budget.artifact_limit_bytes={limit}", "budget.enforce_artifact_limit=true"]
    over = requant(gptq_job, ["quant=gptq_int6", *SMALL, *budget], demo_cache)
    assert over.returncode == 1
    assert "exceeds the" in over.stderr and "B limit by" in over.stderr and "quant.fit_budget=true" in over.stderr
    fit = requant(gptq_job, ["quant=gptq_int6", *SMALL, *budget,
                             "quant.fit_budget=true"], demo_cache)
    assert fit.returncode == 0, fit.stderr[-3000:]
    res = json.loads(_latest(gptq_job).read_text())
    assert res["artifact"]["bytes_total"] <= limit and res["artifact"]["headroom_bytes"] >= 0
    assert res["export"]["fit"]["pruned_codes"] > 0
    assert res["metrics"]["val_bpb"] == res["metrics"]["val_bpb_in_memory"]


def _latest(job: Path) -> Path:
    return max((job / "requant").glob("*/results.json"), key=lambda p: p.stat().st_mtime)


@pytest.mark.parametrize("args,words", [
    (["quant=int9"], "quant=int9 is not a quant config"),
    (["arch.num_layers=3"], "cannot change without retraining"),
    (["quant=int6_zstd", "quant.bits_mlp=3"], "quant.bits_mlp=3 is not supported"),
    (["quant.name=../../escaped"], "quant.name='../../escaped' is not a plain name"),
])
def test_requant_user_errors(gptq_job, demo_cache, args, words):
    proc = requant(gptq_job, args, demo_cache)
    assert proc.returncode == 1 and words in proc.stderr and "Traceback" not in proc.stderr
