"""The pre-training size check: parameter counts by group, an artifact estimate close to the real
compressed bytes, and a refusal (before any training) when it clearly cannot fit."""

import json

import pytest
from conftest import FAST_RUN, job_dirs, run_golf
from omegaconf import OmegaConf

from golf.config.schema import GolfConfig
from golf.quant.estimate import ESTIMATE_TOLERANCE, code_entropy_bits, estimate


def _config(job):
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(GolfConfig), OmegaConf.load(job / "config.yaml")))


def test_estimate_is_within_its_tolerance_of_the_real_artifact(tiny_sweep):
    jobs = [j for j in job_dirs(tiny_sweep) if json.loads((j / "results.json").read_text())["status"] == "completed"]
    assert jobs
    for job in jobs:
        cfg = _config(job)
        real = json.loads((job / "results.json").read_text())["artifact"]["bytes_model"]
        est = estimate(cfg.arch, cfg.quant)
        assert est.params == sum(est.params_by_group.values()) == sum(est.params_by_bits.values())
        assert abs(est.model_bytes - real) <= ESTIMATE_TOLERANCE * real, (real, est)


def test_code_entropy_follows_the_clip_and_never_exceeds_the_bits():
    assert code_entropy_bits(8, 4.8) == pytest.approx(6.77, abs=0.01)
    assert code_entropy_bits(6, 4.8) == pytest.approx(4.74, abs=0.01)
    assert code_entropy_bits(4, 12.85) < code_entropy_bits(4, 4.8) <= 4


def test_run_whose_estimate_cannot_fit_is_refused_before_training(tmp_path, demo_cache):
    limit = ["budget=record_8xh100", "budget.artifact_limit_bytes=60000"]
    proc = run_golf([*FAST_RUN, *limit], tmp_path, demo_cache)
    assert proc.returncode != 0
    for phrase in ("exceeds the 60,000 B limit by", "more than the estimate's 10% error",
                   "budget.check_estimate=false"):
        assert phrase in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.rglob("model.golf")) and not list(tmp_path.rglob("metrics.jsonl"))
    [results] = list(tmp_path.rglob("results.json"))
    failed = json.loads(results.read_text())
    assert failed["status"] == "failed" and failed["error"]["where"] == "size"
