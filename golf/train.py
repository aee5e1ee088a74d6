"""Entrypoint: `python -m golf.train [overrides]` (add `-m` for sweeps).

compose (Hydra) -> validate -> prepare and check data -> write the job dir -> run the worker
(in-process for one process, torchrun for several) -> read results.json -> one-line summary.
Hydra composes; it never runs inside the ranks, so every rank reads the same resolved config.
"""

import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from omegaconf import DictConfig, OmegaConf

from golf.config.schema import GolfConfig, LauncherName, register_schemas
from golf.config.validate import validate
from golf.data.demo import ensure_demo
from golf.data.loader import load_validation_tokens
from golf.data.shards import find_shards, read_shard_header
from golf.data.tokenizer import check_vocab, load_tokenizer
from golf.errors import GolfError
from golf.logging.console import setup_logging
from golf.logging.jsonio import write_json
from golf.logging.results import Results
from golf.utils.environment import environment_info

log = logging.getLogger(__name__)
register_schemas()


class JobFailed(CompactHydraException):
    """Printed by Hydra as one line (no traceback); the details are in the job's results.json."""


def resolve_data(cfg: DictConfig) -> None:
    """data=demo builds (once, cached) the embedded dataset and points data.root at it."""
    if cfg.data.name == "demo" and not cfg.data.root:
        root = ensure_demo(cfg.paths.cache or None)
        cfg.data.root = str(root)
        cfg.data.sha256 = OmegaConf.to_container(OmegaConf.load(root / "manifest.json"))["sha256"]


def check_data(cfg: GolfConfig) -> None:
    """Fail fast, before any process starts: shards exist with valid headers, tokenizer matches the model."""
    for pattern in (cfg.data.train_pattern, cfg.data.val_pattern):
        for shard in find_shards(pattern):
            read_shard_header(shard)
    check_vocab(load_tokenizer(cfg.data.tokenizer_path), cfg.arch.vocab_size, cfg.data.tokenizer_path)
    load_validation_tokens(cfg.data.val_pattern, cfg.eval.seq_len or cfg.train.seq_len)


def job_identity(cfg: DictConfig, job_dir: Path, resolved_yaml: str) -> dict:
    hc = HydraConfig.get()
    choices = {k: v for k, v in hc.runtime.choices.items() if not k.startswith("hydra/") and v is not None}
    sweep = None
    if hc.mode is not None and hc.mode.name == "MULTIRUN":
        sweep = {"name": cfg.sweep_name, "dir": str(Path(hc.sweep.dir).resolve()), "job_num": hc.job.num}
    return {
        "run_id": job_dir.name, "seed": cfg.seed, "choices": choices, "overrides": list(hc.overrides.task),
        "sweep": sweep, "config_sha256": hashlib.sha256(resolved_yaml.encode()).hexdigest(),
        "data": {"name": cfg.data.name, "root": cfg.data.root, "sha256": cfg.data.sha256},
    }


def write_job_files(cfg: DictConfig, job_dir: Path) -> tuple[str, dict]:
    resolved_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    (job_dir / "config.yaml").write_text(resolved_yaml, encoding="utf-8")
    (job_dir / "overrides.txt").write_text("\n".join(HydraConfig.get().overrides.task) + "\n", encoding="utf-8")
    env = environment_info()
    write_json(job_dir / "env.json", env)
    return resolved_yaml, env


def launch(cfg: GolfConfig, job_dir: Path) -> None:
    if cfg.launcher.name == LauncherName.inproc:
        from golf.worker import run

        run(job_dir)
        return
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={cfg.launcher.nproc}",
           "-m", "golf.worker", str(job_dir)]
    log.info("launch: " + " ".join(cmd))
    code = subprocess.run(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}).returncode
    if code != 0:
        results = Results(job_dir)
        if results.data.get("status") == "running":
            results.fail(GolfError(f"torchrun exited with code {code}; see the ranks' output above"), "launch")


def summary_line(results: dict) -> str:
    m, a, t, c = results["metrics"], results["artifact"], results["timing"], results["compliance"]
    return (f"golf | val_bpb {m['val_bpb']:.8f} | val_loss {m['val_loss']:.6f} nats | "
            f"bytes_total {a['bytes_total']:,} / {a['limit_bytes']:,} (headroom {a['headroom_bytes']:,}) | "
            f"train {t['train_s']:.1f}s eval {t['eval_s']:.1f}s | "
            f"compliant: {'yes' if c['compliant'] else 'NO (' + ', '.join(k for k, v in c['checks'].items() if not v['pass']) + ')'}")


def run_job(cfg: DictConfig) -> float:
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    setup_logging(job_dir, rank=0)
    results = Results(job_dir)
    stage = "validate"
    try:
        validate(OmegaConf.to_object(cfg))
        stage = "data"
        resolve_data(cfg)
        typed: GolfConfig = OmegaConf.to_object(cfg)
        check_data(typed)
        stage = "launch"
        resolved_yaml, env = write_job_files(cfg, job_dir)
        results.start(**job_identity(cfg, job_dir, resolved_yaml), git=env["git"],
                      env={k: env[k] for k in ("python", "torch", "cuda", "gpus", "hostname")})
        log.info(f"job dir: {job_dir}")
        choices = " ".join(f"{k}={v}" for k, v in results.data["choices"].items())
        log.info(f"config: {choices} seed={cfg.seed} (resolved: {job_dir / 'config.yaml'})")
        launch(typed, job_dir)
    except GolfError as exc:
        results = Results(job_dir)
        if results.data.get("status") != "failed":
            results.fail(exc, stage)
        if HydraConfig.get().mode.name == "MULTIRUN":  # Hydra reports only the first failure of a sweep
            log.error(f"error: {exc}")
        raise JobFailed(f"error: {exc}  [job dir: {job_dir}]") from None
    final = Results(job_dir).data
    if final.get("status") != "completed":
        error = final.get("error") or {}
        raise JobFailed(f"job failed in stage {error.get('where')}: {error.get('message')}  [job dir: {job_dir}]")
    log.info(summary_line(final))
    return final["metrics"]["val_bpb"]


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return run_job(cfg)


if __name__ == "__main__":
    main()
