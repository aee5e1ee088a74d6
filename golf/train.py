"""Entrypoint: `python -m golf.train [overrides]` (add `-m` for sweeps).

compose (Hydra) -> validate -> prepare and check data -> pick the job dir (Hydra's, or with
`resume=auto` the one this command wrote before, see golf.resume) -> run the worker (in-process
for one process, torchrun for several) -> read results.json -> one-line summary.
Hydra composes; it never runs inside the ranks, so every rank reads the same resolved config.
"""

import hashlib
import logging
import os
import signal
import subprocess
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from omegaconf import DictConfig, OmegaConf

from golf import preemption
from golf.checkpoint import config_sha256
from golf.config.compose import register_schemas
from golf.config.schema import GolfConfig, LauncherName
from golf.config.validate import validate
from golf.data.byte_sidecar import check_sidecar_alignment
from golf.data.demo import ensure_demo
from golf.data.disjoint import check_overlap
from golf.data.loader import load_validation_tokens
from golf.data.shards import find_shards, load_shard, read_shard_header
from golf.data.tokenizer import check_bos, check_tokens_in_vocab, check_vocab, load_tokenizer
from golf.errors import GolfError
from golf.jobdir import JobDir
from golf.launcher import Placement, placement, torchrun_command
from golf.logging.console import setup_logging
from golf.logging.jsonio import write_json
from golf.logging.progress import Progress
from golf.logging.results import ArtifactInfo, Metrics, Results, Timing, section
from golf.logging.sinks import check_wandb_credentials
from golf.output_dirs import launch_id, plain_name
from golf.quant.estimate import check_fits
from golf.record.script import SCRIPT_NAME, train_script
from golf.resume import (
    JobLock,
    check_existing_job,
    check_same_code,
    check_same_config,
    earlier_sweep_slot,
    find_previous,
    job_key,
    remove_unused_dir,
    run_resume_command,
)
from golf.utils import atomic
from golf.utils.environment import environment_info
from golf.workload import check_cpu_sized

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


def check_data(cfg: GolfConfig) -> dict:
    """Before any process starts: shards exist with valid headers, the tokenizer matches the model (fail fast);
    then the train/val overlap scan, whose result the compliance block reads (an overlap is reported, not
    refused: results.json says why the run is not compliant)."""
    for pattern in (cfg.data.train_pattern, cfg.data.val_pattern):
        for shard in find_shards(pattern):
            read_shard_header(shard)
    sp = load_tokenizer(cfg.data.tokenizer_path)
    check_vocab(sp, cfg.arch.vocab_size, cfg.data.tokenizer_path)
    check_bos(sp, cfg.arch.bos_id, cfg.arch.bos_mask, cfg.data.tokenizer_path)
    load_validation_tokens(cfg.data.val_pattern, cfg.eval.seq_len or cfg.train.seq_len)
    if cfg.data.val_bytes_pattern:
        check_sidecar_alignment(cfg.data.val_pattern, cfg.data.val_bytes_pattern)
    check_train_tokens(cfg.data.train_pattern, cfg.arch.vocab_size)
    overlap = check_overlap(cfg.data.train_pattern, cfg.data.val_pattern, int(sp.bos_id()),
                            cfg.data.disjoint_check_tokens)
    if not overlap.disjoint:
        log.warning(f"data: train and val overlap ({len(overlap.shared_files)} shared shard(s), val documents in "
                    f"{len(overlap.files_with_val_docs)} train shard(s)); the run will not be compliant")
    return overlap.summary()


def check_train_tokens(pattern: str, vocab_size: int) -> None:
    """Every train token must index the embedding, checked like the val tokens: an id past the vocabulary
    would otherwise stop training mid-run with an IndexError. One read of each shard, before training."""
    shards = find_shards(pattern)
    with Progress(len(shards), "check train shards", "shards") as progress:
        for shard in shards:
            check_tokens_in_vocab(load_shard(shard), vocab_size, str(shard))
            progress.update()


def _multirun() -> bool:
    mode = HydraConfig.get().mode
    return mode is not None and mode.name == "MULTIRUN"


def resume_command(job_dir: Path) -> str:
    if _multirun():
        return "the same sweep command (python -m golf.train -m ...) with resume=auto"
    return run_resume_command(list(HydraConfig.get().overrides.task), job_dir)


def job_identity(cfg: DictConfig, resolved_yaml: str) -> dict:
    """What identifies this job across re-runs (job_key) and what it computes (config_sha256)."""
    hc = HydraConfig.get()
    choices = {k: v for k, v in hc.runtime.choices.items() if not k.startswith("hydra/") and v is not None}
    sweep = None
    if _multirun():
        sweep = {"name": cfg.sweep_name, "dir": str(Path(hc.sweep.dir).resolve()), "job_num": hc.job.num}
    return {
        "seed": cfg.seed, "choices": choices, "overrides": list(hc.overrides.task), "sweep": sweep,
        "job_key": job_key(list(hc.overrides.task), _multirun()), "launch_id": launch_id(),
        # hashed exactly as the worker hashes config.yaml, so the checkpoint check agrees
        "config_sha256": config_sha256(OmegaConf.to_container(OmegaConf.create(resolved_yaml))),
        "data": {"name": cfg.data.name, "root": cfg.data.root, "sha256": cfg.data.sha256},
    }


def write_job_files(cfg: DictConfig, job_dir: Path, script: bytes, env: dict) -> None:
    jd = JobDir(job_dir)
    atomic.write_text(jd.config, OmegaConf.to_yaml(cfg, resolve=True))
    atomic.write_text(jd.overrides, "\n".join(HydraConfig.get().overrides.task) + "\n")
    atomic.write_bytes(jd.train_script, script)
    write_json(jd.env, env)


def launch(cfg: GolfConfig, job_dir: Path, where: Placement) -> None:
    if cfg.launcher.name == LauncherName.inproc:
        from golf.worker import run

        run(job_dir)
        return
    cmd = torchrun_command(cfg.launcher, job_dir, where)
    log.info("launch: " + " ".join(cmd))
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    received = []

    def pass_on(signum, _frame):
        received.append(signum)
        proc.send_signal(signum)  # torchrun passes it to every rank; they checkpoint and exit as interrupted

    previous = {sig: signal.signal(sig, pass_on) for sig in preemption.SIGNALS}
    try:
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        preemption.chain(previous[received[0]], received[0])  # e.g. submitit's requeue, now the checkpoint is on disk
    if code != 0:
        results = Results(job_dir)
        if results.data.get("status") == "running":
            results.fail(GolfError(f"torchrun exited with code {code}; see the ranks' output above"), "launch")


def summary_line(results: dict) -> str:
    m, a, t = section(Metrics, results, "metrics"), section(ArtifactInfo, results, "artifact"), section(
        Timing, results, "timing")
    c = results["compliance"]
    failed = ", ".join(name for name, check in c["checks"].items() if not check["pass"])
    return (f"golf | val_bpb {m.val_bpb:.8f} ({m.headline}) | val_loss {m.val_loss:.6f} nats | "
            f"bytes_total {a.bytes_total:,} / {a.limit_bytes:,} (headroom {a.headroom_bytes:,}) | "
            f"train {t.train_s:.1f}s eval {_eval_time(t)} | "
            f"compliant: {'yes' if c['compliant'] else 'NO (' + failed + ')'}")


def _eval_time(t: Timing) -> str:
    """The headline protocol's eval time, and its extrapolation when the budget is for more devices."""
    if t.eval_s == t.eval_measured_s:
        return f"{t.eval_s:.1f}s"
    return f"{t.eval_measured_s:.1f}s ({t.eval_s:.1f}s on the budget's devices)"


def choose_job_dir(cfg: DictConfig, identity: dict, hydra_dir: Path) -> Path:
    """The dir this launch runs its job in: Hydra's, unless it holds a job this launch may not enter (refused), or
    resume=auto finds the job elsewhere: where it ran before, or its slot in the sweep's earlier dir."""
    check_existing_job(hydra_dir, cfg.resume.mode, identity["job_key"], identity["launch_id"],
                       resume_command(hydra_dir))
    if Results(hydra_dir).data.get("status") or cfg.resume.mode != "auto":
        return hydra_dir  # a new job, or the one that hydra.run.dir (or a requeue) points at
    out_root = Path(cfg.paths.out_root)
    previous = find_previous(out_root, identity["job_key"], hydra_dir)
    if previous is None and _multirun():
        previous = earlier_sweep_slot(out_root, Path(HydraConfig.get().sweep.dir), hydra_dir.name)
    return previous or hydra_dir


def continue_job(cfg: DictConfig, job_dir: Path, before: dict, identity: dict, script: bytes, env: dict) -> dict:
    """Checks and records before a job that ran before continues: the same config, and the same code unless
    resume.allow_code_change (then the script it counted is kept as train_gpt.<sha256>.py); returns what
    results.json adds."""
    check_same_config(job_dir, before.get("config_sha256"),
                      OmegaConf.to_container(OmegaConf.create(OmegaConf.to_yaml(cfg, resolve=True))),
                      identity["config_sha256"])
    jd = JobDir(job_dir)
    if not jd.train_script.is_file():
        return {}
    counted = jd.train_script.read_bytes()
    if not check_same_code(job_dir, counted, script, before.get("git"), env["git"], cfg.resume.allow_code_change):
        return {}
    sha = hashlib.sha256(counted).hexdigest()
    kept = jd.train_script.with_name(f"{jd.train_script.stem}.{sha[:12]}.py")
    atomic.write_bytes(kept, counted)
    change = {"at_step": (before.get("interrupted") or {}).get("checkpoint_step"), "script_before": kept.name,
              "sha256_before": sha, "sha256_after": hashlib.sha256(script).hexdigest(), "git_before": before.get("git"),
              "git_after": env["git"]}
    log.warning(f"resume.allow_code_change: the code changed since {job_dir} started; its train_gpt.py is now this "
                f"code's, the one it counted before is kept as {kept.name}")
    return {"code_changes": [*before.get("code_changes", []), change]}


def _report(job_dir: Path) -> float:
    final = Results(job_dir).data
    if final.get("status") == "interrupted":
        info = final["interrupted"]
        raise JobFailed(f"{info['message']}; {info['resume']}  [job dir: {job_dir}]")
    if final.get("status") != "completed":
        error = final.get("error") or {}
        raise JobFailed(f"job failed in stage {error.get('where')}: {error.get('message')}  [job dir: {job_dir}]")
    log.info(summary_line(final))
    return final["metrics"]["val_bpb"]


def run_job(cfg: DictConfig) -> float:
    hydra_dir = Path(HydraConfig.get().runtime.output_dir)
    # A job's results are only touched once this run has taken it over; until then a failure is recorded in
    # Hydra's dir, and only when that dir held no job before (it is new, or this launch's own on a requeue).
    owns_hydra_dir = Results(hydra_dir).data.get("launch_id") in (None, launch_id())
    job_dir, lock, started = hydra_dir, None, False
    setup_logging(None, rank=0)
    stage = "validate"
    try:
        validate(OmegaConf.to_object(cfg))
        plain_name(cfg.run_name, "run_name")
        plain_name(cfg.sweep_name, "sweep_name")
        cpu_warning = check_cpu_sized(OmegaConf.to_object(cfg), HydraConfig.get().runtime.choices["arch"])
        if cpu_warning:
            log.warning(cpu_warning)
        check_wandb_credentials(cfg.logger)
        where = placement(cfg.launcher)
        if where.node_rank > 0:  # node 0 owns the job dir and results.json; this node only adds its ranks
            launch(OmegaConf.to_object(cfg), hydra_dir, where)
            log.info(f"node {where.node_rank}/{where.nnodes}: ranks finished; node 0 reports the job")
            return float("nan")
        stage = "data"
        resolve_data(cfg)
        typed: GolfConfig = OmegaConf.to_object(cfg)
        disjoint = check_data(typed)
        stage = "size"
        script, modules = train_script(typed)
        check_fits(typed, len(script))
        stage = "launch"
        identity = job_identity(cfg, OmegaConf.to_yaml(cfg, resolve=True))
        job_dir = choose_job_dir(cfg, identity, hydra_dir)
        lock = JobLock(job_dir)
        lock.acquire()
        if job_dir != hydra_dir:
            remove_unused_dir(hydra_dir)
            if identity["sweep"]:
                identity["sweep"]["dir"] = str(job_dir.parent.resolve())
        before = Results(job_dir).data
        env = environment_info()
        changes = {}
        if before.get("status"):
            if before["status"] == "completed":
                log.info(f"resume=auto: {job_dir} already completed; not run again")
                return _report(job_dir)
            changes = continue_job(cfg, job_dir, before, identity, script, env)
            log.info(f"continuing {job_dir} (status {before['status']})")
        elif job_dir != hydra_dir:
            log.info(f"resume=auto: job {hydra_dir.name} never started; it runs in the sweep's earlier dir {job_dir}")
        removed = JobDir(job_dir).remove_temp_files()
        if removed:
            log.info(f"removed the temp files a killed writer left: {', '.join(str(p) for p in removed)}")
        setup_logging(JobDir(job_dir).train_log, rank=0)
        write_job_files(cfg, job_dir, script, env)
        Results(job_dir).start(run_id=job_dir.name, **identity, **changes, resume_command=resume_command(job_dir),
                               git=env["git"], env={k: env[k] for k in ("python", "torch", "cuda", "gpus", "hostname")},
                               record={"script": SCRIPT_NAME, "bytes": len(script),
                                       "format": str(typed.export.code), "modules": modules})
        Results(job_dir).update("data", disjoint=disjoint)
        started = True
        log.info(f"job dir: {job_dir}")
        choices = " ".join(f"{k}={v}" for k, v in identity["choices"].items())
        log.info(f"config: {choices} seed={cfg.seed} (resolved: {job_dir / 'config.yaml'})")
        launch(typed, job_dir, where)
    except preemption.Preempted:
        pass  # results.json says interrupted and how to resume; reported below
    except KeyboardInterrupt:
        raise JobFailed(f"stopped by a second Ctrl-C, without a checkpoint of the step  [job dir: {job_dir}]") from None
    except (GolfError, OSError) as exc:
        where_failed = job_dir if started else hydra_dir if owns_hydra_dir else None
        if where_failed is not None:
            results = Results(where_failed)
            if results.data.get("status") != "failed":
                results.fail(exc, stage)
        message = str(exc) if isinstance(exc, GolfError) else f"{type(exc).__name__}: {exc}"
        if _multirun():  # Hydra reports only the first failure of a sweep
            log.error(f"error: {message}")
        raise JobFailed(f"error: {message}  [job dir: {where_failed or hydra_dir}]") from None
    finally:
        if lock is not None:
            lock.release()
    return _report(job_dir)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return run_job(cfg)


if __name__ == "__main__":
    main()
