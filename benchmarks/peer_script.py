"""The whole scripts, side by side on one CUDA device (`python -m benchmarks.peer --parts script`).

The official train_gpt.py runs under `torchrun --standalone --nproc_per_node=1` with its environment variables
set from the config (benchmarks.reference.official_env), then `python -m golf.train` runs the same config;
both read the config's shards (linked under the official file names), one process after the other. Both
train train.iterations steps after their warmup steps with 8 micro-batches per step (the official script's
fixed 8 // world size), no wall-clock cap and validation only after the last step, then quantize, reload and
score as they always do. Their own logs give the step times: the official `step:N/M train_loss:...
train_time:Tms step_avg:...ms` lines and golf's metrics.jsonl (`train/elapsed_s` at its log steps).
Compared: the whole run's average step time, the steady step time after step 10 (the first steps of either
still build caches), the pre-quant and round-trip val_bpb each reports, and each process's wall clock.
Both log the same steps (1-10 and the last) and read the loss back there. At each of them golf also measures the
per-layer gradient SNR (golf.optim.gradient_snr), inside its training clock: the official script does not. The row
counts those steps from golf's metrics.jsonl (`golf_snr_log_steps`; one of them, the last, falls in the steady
window); benchmarks.peer measures what one costs (`golf_snr_ms_per_log_step`). Golf's checkpoint write after the
last step is off its clock; its data checks before training and its record script count in its process wall.
The official main() needs CUDA. Results: benchmarks/results/peer_script.{jsonl,md}.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import REPO, device_name, load_config, record
from benchmarks.reference import check_official_config, official_data_dir, official_env
from golf.errors import ConfigError

OFFICIAL_MICRO_BATCHES = 8  # the official main(): grad_accum_steps = 8 // world_size, one process here
STEADY_FROM = 10  # both scripts log every one of the first 10 steps
OFFICIAL_STEP = re.compile(r"^step:(\d+)/\d+ train_loss:\S+ train_time:(\d+)ms step_avg:\S+ms$", re.M)
OFFICIAL_PREQUANT = re.compile(r"^step:\d+/\d+ val_loss:\S+ val_bpb:(\S+) ", re.M)
OFFICIAL_ROUNDTRIP = re.compile(r"^final_int8_zlib_roundtrip_exact val_loss:\S+ val_bpb:(\S+)$", re.M)


def official_times(log: str) -> dict[int, float]:
    """Step -> training milliseconds so far, from the official log's step lines."""
    return {int(step): float(ms) for step, ms in OFFICIAL_STEP.findall(log)}


def golf_times(metrics_jsonl: Path) -> dict[int, float]:
    """Step -> training milliseconds so far, from golf's metrics.jsonl."""
    records = (json.loads(line) for line in metrics_jsonl.read_text().splitlines())
    return {r["step"]: 1000.0 * r["train/elapsed_s"] for r in records if "train/elapsed_s" in r}


def golf_snr_steps(metrics_jsonl: Path) -> list[int]:
    """The training steps at which golf measured the gradient SNR (golf-only work inside its training clock)."""
    records = (json.loads(line) for line in metrics_jsonl.read_text().splitlines())
    return sorted({r["step"] for r in records if "train/elapsed_s" in r and any(k.startswith("snr/") for k in r)})


def step_times(times: dict[int, float]) -> tuple[float, float]:
    """(average ms/step over the whole run, steady ms/step after step STEADY_FROM)."""
    last = max(times)
    steady = (times[last] - times[STEADY_FROM]) / (last - STEADY_FROM) if last > STEADY_FROM else float("nan")
    return times[last] / last, steady


def _run(cmd: list[str], cwd: Path, env: dict, timeout: float, name: str) -> tuple[str, float]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} exited with {proc.returncode}:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return proc.stdout + proc.stderr, time.perf_counter() - start


def run_official(ref_path: Path, cfg, work: Path, timeout: float) -> dict:
    env = {**os.environ, **official_env(cfg, official_data_dir(cfg, work / "data"), "peer", cfg.train.iterations)}
    cwd = work / "official"
    cwd.mkdir()
    _, wall = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
                    str(Path(ref_path).resolve())], cwd, env, timeout, "the official script")
    log = (cwd / "logs" / "peer.txt").read_text()
    return {"times": official_times(log), "wall_s": wall, "prequant": float(OFFICIAL_PREQUANT.findall(log)[-1]),
            "roundtrip": float(OFFICIAL_ROUNDTRIP.search(log).group(1))}


def run_golf(overrides: list[str], steps: int, work: Path, timeout: float) -> dict:
    out = work / "golf"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    _run([sys.executable, "-m", "golf.train", *overrides, f"train.log_every={steps}", "logger=none",
          f"paths.out_root={out}"], out, env, timeout, "golf.train")
    [results] = out.rglob("results.json")
    metrics = json.loads(results.read_text())["metrics"]
    metrics_jsonl = results.parent / "metrics.jsonl"
    return {"times": golf_times(metrics_jsonl), "snr_steps": golf_snr_steps(metrics_jsonl), "wall_s": None,
            "prequant": metrics["val_bpb_prequant"], "roundtrip": metrics["val_bpb"]}


def compare_scripts(ref_path: Path, overrides: list[str], timeout: float = 600.0) -> dict:
    """Run both scripts on `overrides` (+ the settings both need to agree) and record their step times."""
    forced = [f"train.grad_accum_steps={OFFICIAL_MICRO_BATCHES}", "train.val_every=0", "budget=unlimited",
              "launcher=inproc", "launcher.nproc=1"]
    cfg = load_config([*overrides, *forced])
    check_official_config(cfg)
    if not torch.cuda.is_available():
        raise ConfigError("the whole-script comparison needs CUDA (the official main() requires it); "
                          "run --parts model on this machine")
    with tempfile.TemporaryDirectory(prefix="golf_peer_script_") as tmp:
        work = Path(tmp)
        official = run_official(ref_path, cfg, work, timeout)
        start = time.perf_counter()
        golf = run_golf([*overrides, *forced], cfg.train.iterations, work, timeout)
        golf["wall_s"] = time.perf_counter() - start
    (golf_avg, golf_steady), (official_avg, official_steady) = step_times(golf["times"]), step_times(official["times"])
    device = device_name(torch.device("cuda"))
    row = {
        "bench": "peer_script", "device": device, "torch": torch.__version__, "overrides": overrides,
        "arch": f"{cfg.arch.name} {cfg.arch.num_layers}x{cfg.arch.model_dim}", "seq_len": cfg.train.seq_len,
        "batch_tokens": cfg.train.batch_tokens, "steps": cfg.train.iterations,
        "golf_step_avg_ms": round(golf_avg, 2), "official_step_avg_ms": round(official_avg, 2),
        "golf_over_official": round(golf_avg / official_avg, 4),
        "golf_steady_ms": round(golf_steady, 2), "official_steady_ms": round(official_steady, 2),
        "golf_over_official_steady": round(golf_steady / official_steady, 4),
        "val_bpb_prequant": {"golf": golf["prequant"], "official": official["prequant"]},
        "val_bpb_roundtrip": {"golf": golf["roundtrip"], "official": official["roundtrip"]},
        "wall_s": {"golf": round(golf["wall_s"], 1), "official": round(official["wall_s"], 1)},
        "golf_snr_log_steps": golf["snr_steps"],
    }
    record("peer_script", row,
           "| device | arch | seq | tokens/step | steps | golf step_avg ms | official step_avg ms | golf/official "
           "| steady golf/official | pre-quant BPB golf / official | process wall s golf / official |\n"
           + "|---" * 11 + "|\n",
           f"| {device} | {row['arch']} | {row['seq_len']} | {row['batch_tokens']:,} | {row['steps']} | "
           f"{golf_avg:.1f} | {official_avg:.1f} | {row['golf_over_official']:.3f} | "
           f"{row['golf_over_official_steady']:.3f} | {golf['prequant']:.4f} / {official['prequant']:.4f} | "
           f"{golf['wall_s']:.0f} / {official['wall_s']:.0f} |")
    return row
