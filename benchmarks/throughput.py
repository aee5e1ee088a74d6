"""Training throughput of golf's loop vs a plain PyTorch loop of the identical model.

    python -m benchmarks.throughput +experiment=cpu_demo [overrides] [--steps 40] [--repeats 3]

Both loops train the same model (same init, same Muon/Adam split) on the same data for the same
number of steps; golf's loop is the real Trainer (loader, schedules, logging hooks), the plain loop
is the minimal forward/backward/step over pre-loaded batches. Repeats alternate the two so
machine drift hits both. Prints one JSON line and appends it to benchmarks/results/throughput.jsonl
and a Markdown row to benchmarks/results/throughput.md. framework/plain is golf's own overhead.
"""

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from golf.checkpoint import Checkpointer
from golf.config.schema import GolfConfig, register_schemas
from golf.config.validate import grad_accum_steps
from golf.data.demo import ensure_demo
from golf.data.loader import DistributedTokenLoader
from golf.models.registry import build_model
from golf.optim.param_groups import build_optimizers
from golf.trainer import Trainer
from golf.utils.runtime import seed_everything, setup_runtime

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


class _NoSink:
    def log(self, step, metrics):
        pass


def load_config(overrides: list[str]) -> GolfConfig:
    register_schemas()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # so ${hydra:...} interpolations resolve outside @hydra.main
    if cfg.data.name == "demo" and not cfg.data.root:
        cfg.data.root = str(ensure_demo(cfg.paths.cache or None))
    del cfg.hydra
    return OmegaConf.to_object(cfg)


def _fresh(cfg, rt):
    seed_everything(cfg.seed)
    model = build_model(cfg.arch).to(rt.device)
    return model, build_optimizers(model, cfg.optimizer, cfg.arch.tie_embeddings, fused=rt.device.type == "cuda")


def _sync(rt):
    if rt.device.type == "cuda":
        torch.cuda.synchronize()


def time_framework(cfg, rt, steps: int) -> float:
    model, optimizers = _fresh(cfg, rt)
    runner = torch.compile(model, dynamic=False, fullgraph=True) if rt.compile else model
    loader = lambda: DistributedTokenLoader(cfg.data.train_pattern, 0, 1, rt.device)  # noqa: E731
    with tempfile.TemporaryDirectory() as job_dir:  # real checkpointing, as in a run
        trainer = Trainer(model, runner, optimizers, loader, cfg, rt, grad_accum_steps(cfg, 1),
                          lambda step, ms: None, _NoSink(), Checkpointer(Path(job_dir), "benchmark", rt))
        trainer.warmup()
        return 1000.0 * trainer.run().train_seconds / steps


def time_plain(cfg, rt, steps: int) -> float:
    model, optimizers = _fresh(cfg, rt)
    runner = torch.compile(model, dynamic=False, fullgraph=True) if rt.compile else model
    t, accum = cfg.train, grad_accum_steps(cfg, 1)
    loader = DistributedTokenLoader(cfg.data.train_pattern, 0, 1, rt.device)
    batches = [loader.next_batch(t.batch_tokens, t.seq_len, accum) for _ in range((steps + t.warmup_steps) * accum)]
    autocast = dict(device_type=rt.device.type, dtype=torch.bfloat16, enabled=rt.autocast_dtype is not None)
    start = None
    for i in range(steps + t.warmup_steps):
        if i == t.warmup_steps:
            _sync(rt)
            start = time.perf_counter()
        for x, y in batches[i * accum : (i + 1) * accum]:
            with torch.autocast(**autocast):
                loss = runner(x, y)
            (loss / accum).backward()
        for opt in optimizers.values():
            opt.step()
        for opt in optimizers.values():
            opt.zero_grad(set_to_none=True)
    _sync(rt)
    return 1000.0 * (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args, overrides = parser.parse_known_args()
    cfg = load_config([*overrides, f"train.iterations={args.steps}", "train.val_every=0", "train.log_every=0",
                       "budget=unlimited"])
    rt = setup_runtime(cfg.train)
    plain, framework = [], []
    for i in range(args.repeats):  # ABBA order, so drift in machine speed hits both loops alike
        for which in (("plain", "framework") if i % 2 == 0 else ("framework", "plain")):
            if which == "plain":
                plain.append(time_plain(cfg, rt, args.steps))
            else:
                framework.append(time_framework(cfg, rt, args.steps))
    plain_ms, framework_ms = statistics.median(plain), statistics.median(framework)
    device = torch.cuda.get_device_name() if rt.device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    row = {
        "bench": "throughput", "device": device, "torch": torch.__version__, "overrides": overrides,
        "arch": f"{cfg.arch.num_layers}x{cfg.arch.model_dim}", "seq_len": cfg.train.seq_len,
        "batch_tokens": cfg.train.batch_tokens, "steps": args.steps, "repeats": args.repeats,
        "framework_ms_per_step": round(framework_ms, 2), "plain_ms_per_step": round(plain_ms, 2),
        "framework_over_plain": round(framework_ms / plain_ms, 4),
        "tokens_per_s": round(cfg.train.batch_tokens / (framework_ms / 1000)),
        "peak_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20) if rt.device.type == "cuda" else None,
    }
    print(json.dumps(row))
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "throughput.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    md = RESULTS / "throughput.md"
    if not md.exists():
        md.write_text("| device | arch | seq | tokens/step | golf ms/step | plain ms/step | golf/plain | tokens/s |\n"
                      "|---|---|---|---|---|---|---|---|\n")
    with open(md, "a") as f:
        f.write(f"| {device} | {row['arch']} | {row['seq_len']} | {row['batch_tokens']:,} | {framework_ms:.1f} | "
                f"{plain_ms:.1f} | {row['framework_over_plain']:.3f} | {row['tokens_per_s']:,} |\n")


if __name__ == "__main__":
    main()
