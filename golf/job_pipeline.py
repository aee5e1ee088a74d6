"""The pipeline as golf's jobs run it (golf.worker): golf.pipeline's stages plus what a job records and a
record's train_gpt.py leaves out.

- The data access log (golf.data.access): every shard read is entered with the reader (train, val,
  calibration) and the phase (warmup, training) the stage names, for the compliance checks.
- Legality: the round trip and the sliding eval are scored through the legality ledger (golf.eval.scoring),
  so results.json carries each protocol's checks; a stream TTT run adds the memorization diagnostic.
- Training through golf.job_trainer.JobTrainer: checkpoints, preemption, gradient SNR, the metric stream.
- The artifact's numbers for results.json (sizes, headroom, sha256, the quantizer's report).
"""

import contextlib
import time
from pathlib import Path

from golf.artifact import container
from golf.data import access
from golf.eval.scoring import full_eval, sliding_eval
from golf.job_trainer import JobTrainer
from golf.pipeline import Pipeline, Scores


class JobPipeline(Pipeline):
    def __init__(self, cfg, rt, artifact_path: Path, code_bytes: int, sink, checkpointer=None):
        super().__init__(cfg, rt, artifact_path, code_bytes)
        self.sink, self.checkpointer = sink, checkpointer
        access.LOG.clear()  # one run per log: a sequential sweep runs several in one process

    @contextlib.contextmanager
    def reading(self, reader: str, phase: str | None = None):
        with access.reading_as(reader), access.phase(phase) if phase else contextlib.nullcontext():
            yield

    def make_trainer(self, make_loader, cap_seconds: float, finish) -> JobTrainer:
        return JobTrainer(self.model, self.runner, self.optimizers, make_loader, self.cfg, self.rt, self.grad_accum,
                          self.periodic_validation, self.sink, self.checkpointer, cap_seconds, finish)

    def write_artifact(self) -> dict:
        """The artifact written, and its numbers."""
        t0 = time.perf_counter()
        with self.reading("calibration"):  # GPTQ calibrating after training (no reserve) reads training tokens
            super().write_artifact()
        blob, b = self.quantized.blob, self.cfg.budget
        return {"bytes_total": len(blob) + self.code_bytes, "bytes_model": len(blob), "bytes_code": self.code_bytes,
                "limit_bytes": b.artifact_limit_bytes,
                "headroom_bytes": b.artifact_limit_bytes - len(blob) - self.code_bytes,
                "compressor": f"{self.cfg.quant.compressor}-{self.cfg.quant.level}", "quant": self.cfg.quant.name,
                "sha256": container.payload_sha256(blob), "quant_info": self.quantized.info,
                "quant_s": round(time.perf_counter() - t0, 3)}

    def _full_eval(self, model) -> dict:
        return full_eval(model, self.ctx)

    def score_sliding(self, model, ctx, stride: int) -> dict:
        return sliding_eval(model, ctx, stride)

    def score(self, on_chunk=None) -> Scores:
        scores = super().score(on_chunk)
        if self.cfg.ttt.mode == "stream":  # outside the eval timer: a diagnostic, never a score
            from golf.ttt.session import memorization_diagnostic

            scores.ttt["memorization"] = memorization_diagnostic(self.adapted, self.ctx, scores.ttt["val_bpb"])
        return scores
