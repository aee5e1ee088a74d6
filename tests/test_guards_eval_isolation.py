"""The eval path (load the val data, rebuild the model from the artifact, score it) opens no training
shard and touches no network: every file open and socket call is recorded by a Python audit hook."""

import sys

import torch
from test_fault_injection import write_job_dir

from golf.artifact import container
from golf.models.registry import build_model
from golf.quant.quantize import pack_official
from golf.worker import Job

_recording: list | None = None


def _audit(event: str, args) -> None:
    if _recording is not None and (event == "open" or event.startswith(("socket.", "urllib."))):
        _recording.append((event, str(args[0]) if args else ""))


sys.addaudithook(_audit)  # hooks cannot be removed; it records only while _recording is a list


def test_eval_opens_no_training_shard_and_no_socket(tmp_path, demo_cache):
    global _recording
    torch.set_num_threads(1)
    job_dir = write_job_dir(tmp_path / "job", demo_cache, [])
    job = Job(job_dir)
    torch.manual_seed(0)
    model = build_model(job.cfg.arch)
    pipeline = job.pipeline
    pipeline.artifact_path = job_dir / "artifact" / "model.golf"
    container.write(pipeline.artifact_path, pack_official(model, job.cfg.arch, job.cfg.quant))
    _recording = []
    try:
        pipeline.load_data()
        scores = pipeline.score()
    finally:
        events, _recording = _recording, None
    opened = [path for event, path in events if event == "open"]
    assert any("demo_val_" in p for p in opened) and any(p.endswith("model.golf") for p in opened)
    assert not [p for p in opened if "demo_train_" in p]
    assert not [e for e in events if e[0] != "open"]
    assert 0 < scores.headline_result["val_bpb"] < 20
