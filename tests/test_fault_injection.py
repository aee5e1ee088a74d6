"""Injected faults: a kill during the checkpoint write, a NaN at step k, a full disk on the results
write, a changed config or world size under a checkpoint. Each must stop cleanly and lose nothing."""

import errno
import json
import os
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

from golf import checkpoint, preemption
from golf.checkpoint import Checkpointer, CheckpointError
from golf.config.schema import GolfConfig
from golf.data.demo import ensure_demo
from golf.guards import NonFiniteError, check_finite_weights
from golf.logging.results import Results
from golf.logging.sinks import rewind_metrics
from golf.record.script import SCRIPT_NAME, train_script
from golf.resume import JobLock, JobRunning
from golf.worker import Job

# The FAST_RUN model and schedule, written straight into a job dir's config.yaml (no Hydra parent).
TINY = ["arch.num_layers=2", "arch.model_dim=64", "arch.num_heads=2", "arch.num_kv_heads=1", "train.iterations=6",
        "train.batch_tokens=2048", "train.seq_len=64", "train.grad_accum_steps=1", "train.warmup_steps=1",
        "train.warmdown_iters=3", "train.val_every=3", "train.log_every=2", "train.threads=1", "eval.batch_tokens=8192",
        "eval.max_seqs=48", "budget.train_seconds=0", "budget.eval_seconds=0", "logger.name=none"]


def write_job_dir(job_dir: Path, cache: Path, extra: list[str]) -> Path:
    root = ensure_demo(cache)
    cfg = OmegaConf.merge(OmegaConf.structured(GolfConfig), OmegaConf.from_dotlist([
        *TINY, *extra, f"data.root={root}", f"data.train_pattern={root}/demo_train_*.bin",
        f"data.val_pattern={root}/demo_val_*.bin"]))
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    (job_dir / SCRIPT_NAME).write_bytes(train_script(OmegaConf.to_object(cfg))[0])  # as golf.train writes it
    Results(job_dir).start(run_id=job_dir.name)
    return job_dir


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(4, 4)


def _saver(tmp_path, config_hash="a" * 64, world_size=1):
    rt = SimpleNamespace(rank=0, world_size=world_size, is_main=True, distributed=False)
    model = Tiny()
    opt = torch.optim.Adam(model.parameters())
    model.proj(torch.ones(1, 4)).sum().backward()
    opt.step()
    loader = SimpleNamespace(stream=SimpleNamespace(file_index=0, position=7))  # a sequential loader's place
    return Checkpointer(tmp_path, config_hash, rt), model, {"adam": opt}, loader


def hook_after_build(job: Job, hook) -> None:
    """Register `hook` as a forward pre-hook on the model the job builds, to fault it mid-training."""
    pipeline = job.pipeline
    original_build = pipeline.build

    def build_then_hook():
        info = original_build()
        pipeline.model.register_forward_pre_hook(hook)
        return info

    pipeline.build = build_then_hook


def test_kill_during_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    saver, model, opts, loader = _saver(tmp_path)
    saver.save(4, 1234.0, 2.5, model, opts, loader)
    good = checkpoint.checkpoint_path(tmp_path).read_bytes()

    def dies_halfway(obj, f):
        f.write(b"\x80\x02partial")
        raise KeyboardInterrupt  # stands in for the process dying inside torch.save

    monkeypatch.setattr(checkpoint.torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        saver.save(6, 2000.0, 2.4, model, opts, loader)
    assert checkpoint.checkpoint_path(tmp_path).read_bytes() == good
    state = saver.load()
    assert state["step"] == 4 and state["training_ms"] == 1234.0 and state["ranks"][0]["loader"]["position"] == 7


def test_unreadable_checkpoint_is_a_clear_error(tmp_path):
    path = checkpoint.checkpoint_path(tmp_path)
    path.parent.mkdir()
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable.*delete"):
        _saver(tmp_path)[0].load()


def test_checkpoint_refuses_another_config_or_world_size(tmp_path):
    saver, model, opts, loader = _saver(tmp_path)
    saver.save(2, 10.0, 3.0, model, opts, loader)
    with pytest.raises(CheckpointError, match="config sha256 aaaaaaaaaaaa.*bbbbbbbbbbbb.*resume=never"):
        _saver(tmp_path, config_hash="b" * 64)[0].load()
    with pytest.raises(CheckpointError, match="written by 1 processes.*launcher.nproc=1"):
        _saver(tmp_path, world_size=2)[0].load()


def test_config_hash_ignores_resume_only():
    base = {"seed": 1, "resume": "never", "train": {"iterations": 6}}
    assert checkpoint.config_sha256(base) == checkpoint.config_sha256({**base, "resume": "auto"})
    assert checkpoint.config_sha256(base) != checkpoint.config_sha256({**base, "seed": 2})


def test_rewind_metrics_keeps_what_the_resumed_run_will_not_rewrite(tmp_path):
    path = tmp_path / "metrics.jsonl"
    records = [{"step": 0, "val/bpb": 4.0}, {"step": 2, "train/loss": 6.0}, {"step": 3, "train/loss": 5.0},
               {"step": 3, "val/bpb": 3.9}, {"step": 4, "train/loss": 4.0}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    rewind_metrics(path, 3)
    assert [json.loads(line) for line in path.read_text().splitlines()] == records[:3]


def test_nan_at_step_k_stops_the_run_naming_the_step_and_writes_no_artifact(tmp_path, demo_cache):
    torch.set_num_threads(1)
    job_dir = write_job_dir(tmp_path / "job", demo_cache, ["train.checkpoint_every_steps=2"])
    job = Job(job_dir)
    calls = []

    def poison_at_step_4(module, args):
        if module.training:
            calls.append(1)
            if len(calls) == 5:  # the forward pass of step 4 (after one warmup step)
                with torch.no_grad():
                    next(module.parameters()).fill_(float("nan"))

    hook_after_build(job, poison_at_step_4)
    with pytest.raises(NonFiniteError, match="at step 4"):
        job.run()
    results = json.loads((job_dir / "results.json").read_text())
    assert results["status"] == "failed" and results["error"]["where"] == "train"
    assert results["error"]["type"] == "NonFiniteError" and "step 4" in results["error"]["message"]
    assert not (job_dir / "artifact").exists()
    # the checkpoint due at step 4 was refused; the one from before the fault is kept
    assert torch.load(job_dir / "ckpt" / "last.pt", weights_only=False)["step"] == 2


def test_weight_guard_names_the_tensor():
    model = Tiny()
    with torch.no_grad():
        model.proj.bias[1] = float("inf")
    with pytest.raises(NonFiniteError, match=r"weight proj.bias has 1 NaN/inf values at step 7 \(export\)"):
        check_finite_weights(model, 7, "export")
    check_finite_weights(Tiny(), 7, "export")


def test_disk_full_on_results_write_keeps_the_last_good_results(tmp_path, monkeypatch):
    results = Results(tmp_path)
    results.start(run_id="r")
    results.update("metrics", steps=6)
    before = (tmp_path / "results.json").read_text()

    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        results.update("metrics", val_bpb=1.5)
    assert (tmp_path / "results.json").read_text() == before
    assert json.loads(before)["metrics"] == {"steps": 6}
    assert not list(tmp_path.glob("*.tmp"))


def test_a_failure_on_a_full_disk_is_recorded_once_the_temp_file_that_filled_it_is_gone(tmp_path, monkeypatch):
    results = Results(tmp_path)
    results.start(run_id="r")
    (tmp_path / "ckpt").mkdir()
    filler = tmp_path / "ckpt" / "last.pt.tmp"  # the half-written checkpoint of the write that hit the full disk
    filler.write_bytes(b"x" * 4096)
    fsync = os.fsync

    def full_while_filler_exists(fd):
        if filler.exists():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", full_while_filler_exists)
    results.fail(OSError(errno.ENOSPC, "No space left on device"), "train")
    recorded = json.loads((tmp_path / "results.json").read_text())
    assert recorded["status"] == "failed" and recorded["error"]["type"] == "OSError"
    assert not list(tmp_path.rglob("*.tmp"))


def test_signal_after_training_stops_at_once_and_chains_to_the_previous_handler():
    seen = []
    before = signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
    try:
        preemption.install()
        os.kill(os.getpid(), signal.SIGUSR1)  # during training: only a flag, polled by the trainer
        assert preemption.requested() == signal.SIGUSR1 and not seen
        with pytest.raises(preemption.Preempted, match="SIGUSR1 at step 9"):
            preemption.stop_immediately(9)  # training is saved: the pending signal stops the run now
        preemption.forward(signal.SIGUSR1)
        assert seen == [signal.SIGUSR1]  # e.g. submitit's requeue handler
        with pytest.raises(preemption.Preempted, match="SIGUSR1 at step 9"):
            os.kill(os.getpid(), signal.SIGUSR1)
    finally:
        preemption.uninstall()
        signal.signal(signal.SIGUSR1, before)


def test_a_running_job_is_never_taken_over(tmp_path):
    running = JobLock(tmp_path)
    running.acquire()
    try:
        with pytest.raises(JobRunning, match="locked by a running process"):
            JobLock(tmp_path).acquire()
    finally:
        running.release()
    again = JobLock(tmp_path)  # the owner is gone (as after a SIGKILL): free to continue
    again.acquire()
    again.release()


@pytest.mark.parametrize("recipe, averaged", [
    (["train.ema_decay=0.9", "train.loader=coprime"], {"method": "ema", "updates": 6}),
    (["train.swa_every=1", "train.swa_below=0.9", "train.warmdown_iters=5", "train.seq_len_schedule=[[3,32]]"],
     {"method": "swa", "snapshots": 4}),  # lr_mul 0.8, 0.6, 0.4, 0.2 at steps 2-5
], ids=["ema-coprime", "swa-seqlen-schedule"])
def test_crash_then_resume_with_weight_averaging_is_bit_identical(tmp_path, demo_cache, recipe, averaged):
    torch.set_num_threads(1)
    extra = ["train.checkpoint_every_steps=2", "train.deterministic=true", *recipe]
    reference = write_job_dir(tmp_path / "reference", demo_cache, extra)
    Job(reference).run()
    job_dir = write_job_dir(tmp_path / "job", demo_cache, extra)
    job = Job(job_dir)
    forwards = []

    def crash_in_step_4(module, args):
        if module.training:
            forwards.append(1)
            if len(forwards) == 6:  # one warmup forward, then steps 0-4: dies like a SIGKILL mid-step
                raise RuntimeError("simulated crash")

    hook_after_build(job, crash_in_step_4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        job.run()
    crashed = torch.load(job_dir / "ckpt" / "last.pt", weights_only=False)
    assert crashed["step"] == 4 and crashed["averaging"]["count"] > 0  # averaging state mid-run is in the file

    Job(job_dir).run()
    mine, theirs = (json.loads((d / "results.json").read_text()) for d in (job_dir, reference))
    assert mine["status"] == "completed" and mine["averaging"] == theirs["averaging"]
    assert mine["averaging"]["applied"] and averaged.items() <= mine["averaging"].items()
    for key in ("val_bpb", "val_loss", "val_bpb_prequant", "train_loss_final", "tokens_seen"):
        assert mine["metrics"][key] == theirs["metrics"][key], key
    assert mine["artifact"]["sha256"] == theirs["artifact"]["sha256"]
    final, expected = (torch.load(d / "ckpt" / "last.pt", weights_only=False) for d in (job_dir, reference))
    assert all(torch.equal(final["model"][k], expected["model"][k]) for k in expected["model"])
    assert all(torch.equal(final["averaging"]["state"][k], v) for k, v in expected["averaging"]["state"].items())
    exported, exported_ref = (torch.load(d / "prequant.pt") for d in (job_dir, reference))  # the averaged weights
    assert all(torch.equal(exported[k], exported_ref[k]) for k in exported_ref)
    assert not all(torch.equal(exported[k], final["model"][k]) for k in exported)  # ...not the last ones
