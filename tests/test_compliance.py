"""Every compliance check comes from what the run observed, and each one fails when it should: real runs that
train on val, calibrate on val, read training data after training, overrun the eval budget, exceed the
artifact limit only through their code bytes or produce a non-finite artifact; plus the headline metric and
the model state the artifact restores."""

import json
import math
import shutil

import numpy as np
import pytest
from conftest import FAST_RUN, job_dirs, read_results, run_golf

from golf.data.disjoint import check_overlap
from golf.data.shard_writer import write_shard
from golf.data.shards import find_shards, load_shard
from golf.logging.results import Results

GPTQ = ["quant=gptq_int6", "quant.calib_seqs=4"]


def _run(tmp_path, demo_cache, *overrides: str) -> tuple[dict, object]:
    out = tmp_path / "out"
    out.mkdir()
    proc = run_golf([*FAST_RUN, *overrides], out, demo_cache)
    [job] = job_dirs(out)
    return read_results(job), proc


def _failed(results: dict) -> set[str]:
    return {name for name, check in results["compliance"]["checks"].items() if not check["pass"]}


def test_calibrating_after_training_reads_training_data_after_the_cap(tmp_path, demo_cache):
    """budget=unlimited lets the reserve be 0: calibration then reads training shards after training ended;
    the run says so. The eval budget is overrun too (a cap of 1 ms)."""
    results, proc = _run(tmp_path, demo_cache, *GPTQ, "quant.calib_reserve_s=0", "budget.eval_seconds=0.001")
    assert results["status"] == "completed", proc.stderr[-2000:]
    checks = results["compliance"]["checks"]
    assert _failed(results) == {"full_validation_split", "train_data_after_cap", "eval_under_budget"}
    assert checks["train_data_after_cap"]["value"]["reads_outside_training_time"] >= 1
    assert "calib_reserve_s" in checks["train_data_after_cap"]["reason"]
    assert checks["eval_under_budget"]["timer"]["protocol"] == "roundtrip"
    assert "train_data_after_cap" in proc.stdout  # the summary line names the failed checks


def test_calibration_inside_the_reserve_is_compliant(tmp_path, demo_cache):
    results, _ = _run(tmp_path, demo_cache, *GPTQ, "quant.calib_reserve_s=12")
    assert _failed(results) == {"full_validation_split"}  # eval.max_seqs caps FAST_RUN's eval: never compliant
    assert results["quant"]["calibration"].startswith("train:")


def test_a_record_budget_refuses_calibration_after_the_cap(tmp_path, demo_cache):
    out = tmp_path / "out"
    out.mkdir()
    fast = [o for o in FAST_RUN if not o.startswith("budget")]
    proc = run_golf([*fast, *GPTQ, "quant.calib_reserve_s=0", "budget=record_8xh100"], out, demo_cache)
    assert proc.returncode != 0 and "quant.calib_reserve_s=12" in proc.stderr
    assert not list(out.rglob("metrics.jsonl"))  # refused before any training


def test_training_and_calibrating_on_val_data_is_not_compliant(tmp_path, demo_cache):
    results, _ = _run(tmp_path, demo_cache, *GPTQ, "quant.calib_reserve_s=12",
                      "data.train_pattern=${data.val_pattern}")
    assert results["status"] == "completed"
    failed = _failed(results)
    assert {"train_val_disjoint", "no_val_in_calibration"} <= failed
    disjoint = results["compliance"]["checks"]["train_val_disjoint"]["value"]
    assert disjoint["shared_files"] and disjoint["val_files_trained_on"]
    assert results["compliance"]["checks"]["no_val_in_calibration"]["value"]["val_files_read"]


def test_val_documents_copied_into_a_train_shard_are_found(tmp_path, demo_cache):
    root = next(demo_cache.iterdir())
    data = tmp_path / "data"
    shutil.copytree(root, data)
    val = np.asarray(load_shard(next(data.glob("demo_val_*.bin"))))
    train = np.asarray(load_shard(next(data.glob("demo_train_*.bin"))))
    starts = np.flatnonzero(val == 1)
    write_shard(next(data.glob("demo_train_*.bin")), np.concatenate([train, val[starts[3] : starts[4]]]))
    overlap = check_overlap(str(data / "demo_train_*.bin"), str(data / "demo_val_*.bin"), 1, 10**8)
    assert not overlap.disjoint and list(overlap.files_with_val_docs.values()) == [1]
    clean = check_overlap(str(root / "demo_train_*.bin"), str(root / "demo_val_*.bin"), 1, 10**8)
    assert clean.disjoint and clean.val_documents > 0


def test_a_non_finite_export_fails_the_run_and_claims_no_artifact(tmp_path, demo_cache):
    """Weights that stay finite but overflow the int8 export's fp16 scales dequantize to inf."""
    results, proc = _run(tmp_path, demo_cache, "optimizer.tied_embed_lr=1e8")
    assert proc.returncode != 0 and results["status"] == "failed"
    assert results["error"]["where"] == "quantize" and "NaN/inf" in results["error"]["message"]
    assert "artifact" not in results
    json.loads((next(tmp_path.rglob("results.json"))).read_text())  # still strict JSON


def test_results_json_stays_strict_json_when_a_value_is_not_finite(tmp_path):
    results = Results(tmp_path)
    with pytest.raises(ValueError):
        results.update("metrics", val_bpb=math.nan)
    results.fail(RuntimeError("boom"), "eval")
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["status"] == "failed" and data["metrics"]["val_bpb"] is None


@pytest.mark.parametrize("start", [100, 0], ids=["stopped_before_recurrence", "recurrence_on"])
def test_the_artifact_restores_the_depth_the_model_was_trained_to(tmp_path, demo_cache, start):
    """An unquantized artifact scores exactly what the trained model scored, recurrence on or off."""
    results, proc = _run(tmp_path, demo_cache, "quant=none", "arch.recur_layers=[1]", f"arch.recur_start_step={start}")
    assert results["status"] == "completed", proc.stderr[-2000:]
    m = results["metrics"]
    assert m["val_bpb_roundtrip"] == m["val_bpb_prequant"]


def test_a_sliding_run_reports_the_sliding_score_and_its_eval_time(tmp_path, demo_cache):
    results, _ = _run(tmp_path, demo_cache, "eval=sliding64", "eval.stride=16")
    m, t = results["metrics"], results["timing"]
    assert m["headline"] == "sliding" and m["val_bpb"] == m["val_bpb_sliding"] != m["val_bpb_roundtrip"]
    assert m["val_bpb_sliding"] < m["val_bpb_roundtrip"]  # more context per scored token
    assert t["eval_measured_s"] == t["sliding_s"] and t["eval_s"] == t["sliding_s"]  # budget=unlimited: 1 device
    assert results["compliance"]["checks"]["each_token_scored_once"]["value"]["summed"] == m["val_tokens"]


# Between this tiny run's model bytes (~231 kB) and its model + train_gpt.py bytes (~258 kB).
LIMIT = 240_000


@pytest.fixture(scope="module")
def small_val(tmp_path_factory, demo_cache) -> str:
    """The first 64 sequences of the demo val split as a split of its own, so a run can score all of it in a
    blink (a capped eval, eval.max_seqs, is never compliant)."""
    [shard] = find_shards(f"{demo_cache}/demo-*/demo_val_*.bin")
    out = tmp_path_factory.mktemp("small_val")
    write_shard(out / "small_val_000000.bin", load_shard(shard)[: 64 * 64 + 1])
    return f"{out}/small_val_*.bin"


@pytest.fixture(scope="module")
def over_limit_by_code(tmp_path_factory, demo_cache, small_val):
    """A run whose model alone fits LIMIT but whose model + code does not, with the limit reported, not enforced,
    and everything else compliant (the whole, small, val split is scored)."""
    out = tmp_path_factory.mktemp("over_limit")
    proc = run_golf([*FAST_RUN, "eval.max_seqs=0", f"data.val_pattern={small_val}", "budget=unlimited",
                     f"budget.artifact_limit_bytes={LIMIT}"], out, demo_cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [job] = job_dirs(out)
    return read_results(job), proc.stdout


def test_code_bytes_count_against_the_artifact_limit(over_limit_by_code):
    results, stdout = over_limit_by_code
    art, compliance = results["artifact"], results["compliance"]
    assert art["bytes_model"] < LIMIT < art["bytes_total"] == art["bytes_model"] + art["bytes_code"]
    assert compliance["checks"]["artifact_under_limit"] == {"pass": False, "value": art["bytes_total"], "limit": LIMIT}
    assert art["headroom_bytes"] == LIMIT - art["bytes_total"] < 0
    assert compliance["compliant"] is False
    assert "compliant: NO (artifact_under_limit)" in stdout


def test_every_other_check_passes_so_the_limit_alone_decides(over_limit_by_code):
    results, _ = over_limit_by_code
    failing = [name for name, check in results["compliance"]["checks"].items() if not check["pass"]]
    assert failing == ["artifact_under_limit"]


def test_an_enforced_limit_fails_the_run_naming_the_overshoot(tmp_path, demo_cache):
    proc = run_golf([*FAST_RUN, "budget=cpu_smoke", f"budget.artifact_limit_bytes={LIMIT}",
                     "budget.check_estimate=false"], tmp_path, demo_cache)
    assert proc.returncode != 0
    [job] = job_dirs(tmp_path)
    results = read_results(job)
    assert results["status"] == "failed" and results["error"]["type"] == "ArtifactError"
    assert f"exceeds the {LIMIT:,} B limit" in results["error"]["message"]
    assert "metrics" not in results or "val_bpb" not in results["metrics"]  # never scored
