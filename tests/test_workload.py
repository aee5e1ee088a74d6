"""Saying how long a run takes before the wait: GPU-sized runs on the CPU refused or warned about before
launch, and the expected training time from the warm-up."""

import json

from conftest import run_golf

from golf.config.schema import GolfConfig
from golf.logging.console import expected_training
from golf.workload import check_cpu_sized


def test_expected_time_skips_the_compile_steps_and_names_the_cap():
    # 2 compile steps, then a steady 0.5 s: 1,000 steps x 500 ms = 8 min 20 s; a 300 s cap stops it at 600 steps.
    assert expected_training([9.0, 7.0, 0.5, 0.6, 0.4], 1000, 2, 300.0) == (
        "expected training time: 1,000 steps x 500.0 ms/step (warm-up) = 8:20; the 300 s cap stops it after "
        "about 600 steps (validation, export and eval come on top)")
    # Too few warm-up steps to skip the compiles: the last one stands for the rest; no cap, no cut.
    assert expected_training([9.0, 2.0], 7200, 2, 0.0).startswith(
        "expected training time: 7,200 steps x 2,000.0 ms/step (warm-up) = 4:00:00 (")


def test_gpu_sized_run_on_cpu_is_named_with_its_cpu_variant():
    cfg = GolfConfig()  # the baseline preset with the record schedule: 524,288 tokens a step
    cfg.train.device = "cpu"
    warning = check_cpu_sized(cfg, "baseline")
    assert "arch=baseline has 17,059,912 params and a step trains 524,288 tokens, ~1,844x the work" in warning
    assert "python -m golf.train +experiment=cpu_demo arch=baseline_cpu plus your other overrides" in warning
    cfg.train.device = "cuda"
    assert check_cpu_sized(cfg, "baseline") is None
    # The CPU demo's own shape is CPU-sized; a preset without a _cpu twin points at arch=tiny.
    cfg.train.device, cfg.train.batch_tokens = "cpu", 8192
    cfg.arch.num_layers, cfg.arch.model_dim, cfg.arch.num_heads, cfg.arch.num_kv_heads = 4, 128, 4, 2
    assert check_cpu_sized(cfg, "tiny") is None
    cfg.train.batch_schedule = [[100, 524288]]
    assert "+experiment=cpu_demo arch=tiny plus your other overrides" in check_cpu_sized(cfg, "tiny")


def test_the_flagship_command_without_a_gpu_is_refused_before_any_work(tmp_path, demo_cache):
    proc = run_golf(["arch=swiglu_unet", "ttt=adamw", "logger=none"], tmp_path, demo_cache,
                    env={"CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert ("error: a GPU-sized run on the CPU: arch=swiglu_unet has 33,425,496 params and a step trains 524,288 "
            "tokens, ~3,613x the work of a +experiment=cpu_demo step") in proc.stderr
    assert "python -m golf.train +experiment=cpu_demo arch=swiglu_unet_cpu plus your other" in proc.stderr
    assert "or set train.device=cpu to train this on the CPU anyway" in proc.stderr
    [results] = tmp_path.rglob("results.json")
    assert json.loads(results.read_text())["error"]["where"] == "validate"
    assert not list(tmp_path.rglob("metrics.jsonl"))
    # Asked for explicitly, it is a warning, and the run goes on, here to the size check, which a 1 MB limit
    # makes fail (the preset's own quantizer fits it in 16 MB: never train 33 M parameters on a test machine).
    proc = run_golf(["arch=swiglu_unet", "ttt=adamw", "logger=none", "train.device=cpu",
                     "budget.artifact_limit_bytes=1000000"], tmp_path, demo_cache)
    assert "warning: a GPU-sized run on the CPU: arch=swiglu_unet" in proc.stdout
    assert "exceeds the 1,000,000 B limit" in proc.stderr
