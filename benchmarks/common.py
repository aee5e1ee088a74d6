"""What every benchmark shares: composing a golf config outside Hydra's main, building golf's model and
optimizers as a run does, naming the device, and appending results (one JSON line per run, one Markdown row)
under benchmarks/results/, or under $GOLF_BENCH_RESULTS when set (the GPU suite's output folder)."""

import json
import os
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from golf.config.compose import register_schemas
from golf.config.schema import GolfConfig
from golf.config.validate import validate
from golf.data.demo import ensure_demo
from golf.models.layers import apply_baseline_precision
from golf.models.registry import build_model
from golf.optim.param_groups import build_optimizers
from golf.utils.compile import compile_model
from golf.utils.environment import cpu_model
from golf.utils.runtime import seed_everything

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("GOLF_BENCH_RESULTS") or REPO / "benchmarks" / "results")


def load_config(overrides: list[str]) -> GolfConfig:
    register_schemas()
    with initialize_config_dir(config_dir=str(REPO / "golf" / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # so ${hydra:...} interpolations resolve outside @hydra.main
    if cfg.data.name == "demo" and not cfg.data.root:
        cfg.data.root = str(ensure_demo(cfg.paths.cache or None))
    del cfg.hydra
    cfg = OmegaConf.to_object(cfg)
    validate(cfg)
    return cfg


class NoSink:
    """A metric sink that drops everything: benchmarks time the Trainer, not its logging."""

    def log(self, step, metrics):
        pass


def golf_training_setup(cfg, rt, compiled: bool):
    """(model, runner, optimizers) as golf.worker builds them: seeded init, the baseline's bf16 storage dtypes
    under bf16 autocast, the compiled runner when `compiled`, fused Adam on CUDA."""
    seed_everything(cfg.seed)
    model = build_model(cfg.arch)
    if rt.autocast_dtype == torch.bfloat16:
        apply_baseline_precision(model)
    model = model.to(rt.device)
    runner = compile_model(model) if compiled else model
    return model, runner, build_optimizers(model, cfg.optimizer, cfg.arch.tie_embeddings,
                                           fused=rt.device.type == "cuda", compiled=compiled)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({cpu_model()}, {torch.get_num_threads()} threads)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated GPU memory, or the process's peak resident set size on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def record(name: str, row: dict, header: str, md_row: str) -> None:
    """Print the row and append it to <name>.jsonl and (with the header on first use) <name>.md."""
    print(json.dumps(row))
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{name}.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    md = RESULTS / f"{name}.md"
    if not md.exists():
        md.write_text(header)
    with open(md, "a") as f:
        f.write(md_row + "\n")
