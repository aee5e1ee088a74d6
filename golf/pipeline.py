"""One run from data to a scored artifact: the stages golf's worker and a record's train_gpt.py share.

load_data -> build -> train (the loop, then end-of-training calibration inside the training time) ->
write_artifact (quantize, check, write the bytes counted against the limit) -> score (every protocol on a
fresh model rebuilt from those bytes: the round trip, the sliding eval, test-time training). This is what a
record's train_gpt.py runs; golf's jobs run golf.job_pipeline.JobPipeline, which adds the data access log,
the legality ledger of every protocol, checkpoints and the metric stream (golf.job_trainer) and what
results.json records. Every rank runs every stage; rank 0 writes the artifact file. Hydra, OmegaConf and
W&B are never imported here.
"""

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from golf.artifact import container
from golf.config.derived import eval_batch_seqs, eval_seq_len, grad_accum_steps
from golf.data.train_loader import build_train_loader
from golf.errors import ArtifactError
from golf.eval.context import load_eval_context
from golf.eval.full import evaluate_full
from golf.guards import NonFiniteError, check_finite_weights
from golf.models.layers import apply_baseline_precision
from golf.models.registry import build_model, load_model
from golf.optim.param_groups import build_optimizers, split_parameters
from golf.quant.quantize import quantize, reads_training_data
from golf.trainer import Trainer, TrainOutcome
from golf.utils.compile import compile_model
from golf.utils.runtime import seed_everything

log = logging.getLogger(__name__)

HEADLINES = {"ttt": "the legal test-time-training score", "sliding": "the sliding-window score",
             "roundtrip": "the non-overlapping round trip"}


@dataclass
class Scores:
    """Every protocol scored on the artifact; `headline` names the one the leaderboard reports for this run."""

    roundtrip: dict
    sliding: dict | None
    ttt: dict | None  # legal or research-only (ttt["legal"])
    headline: str  # roundtrip | sliding | ttt

    @property
    def headline_result(self) -> dict:
        return getattr(self, self.headline)


def headline_protocol(cfg) -> str:
    """The metric the records report for this run's protocol: the legal TTT score for a legal TTT run, the
    sliding score for a sliding eval, the non-overlapping round trip otherwise."""
    if cfg.ttt.mode in ("stream", "lora", "phased_lora"):
        return "ttt"
    return "sliding" if cfg.eval.name == "sliding" else "roundtrip"


class Pipeline:
    def __init__(self, cfg, rt, artifact_path: Path, code_bytes: int):
        self.cfg, self.rt = cfg, rt
        self.artifact_path, self.code_bytes = Path(artifact_path), code_bytes
        self.grad_accum = grad_accum_steps(cfg, rt.world_size)
        self.seq_len = eval_seq_len(cfg)
        self.calibration = None
        self.last_val: dict = {}

    def reading(self, reader: str, phase: str | None = None):
        """Shard reads inside are made by `reader` (train, val, calibration), in `phase` (warmup, training) when
        given; golf.job_pipeline enters them in the data access log."""
        return contextlib.nullcontext()

    # ---- data and model ------------------------------------------------------------------------------

    def load_data(self) -> None:
        d = self.cfg.data
        with self.reading("val"):
            self.ctx = load_eval_context(self.cfg, self.rt, eval_batch_seqs(self.cfg, self.rt.world_size))
        sidecar = f" bytes from {d.val_bytes_pattern}" if self.ctx.val.has_byte_sidecar else ""
        log.info(f"data: {d.name} val_tokens {len(self.ctx.val) - 1:,}{sidecar} tokenizer {d.tokenizer_path}")

    def build(self) -> dict:
        seed_everything(self.cfg.seed)
        self.model = self._for_device(build_model(self.cfg.arch))
        groups = split_parameters(self.model, self.cfg.optimizer)
        counts = {group: sum(p.numel() for _, p in named) for group, named in groups.items()}
        n_params = sum(p.numel() for p in self.model.parameters())
        log.info(f"model: {self.cfg.arch.name} params {n_params:,} by group {counts}")
        runner = compile_model(self.model) if self.rt.compile else self.model
        if self.rt.distributed:
            runner = DistributedDataParallel(runner, device_ids=[self.rt.local_rank] if self.rt.device.type == "cuda"
                                             else None, broadcast_buffers=False)
        self.runner = runner
        self.optimizers = build_optimizers(self.model, self.cfg.optimizer, self.cfg.arch.tie_embeddings,
                                           fused=self.rt.device.type == "cuda", compiled=self.rt.compile)
        return {"n_params": n_params, "n_params_by_group": counts}

    def _for_device(self, model):
        if self.rt.autocast_dtype == torch.bfloat16:
            apply_baseline_precision(model)
        return model.to(self.rt.device)

    # ---- training ------------------------------------------------------------------------------------

    def periodic_validation(self, step: int, training_ms: float) -> dict:
        with self.reading("val"):
            self.last_val = evaluate_full(self.model, self.ctx)
        log.info(f"step {step} val_loss {self.last_val['val_loss']:.4f} val_bpb {self.last_val['val_bpb']:.4f} "
                 f"train_time {training_ms / 1000:.1f}s")
        return self.last_val

    def make_trainer(self, make_loader, cap_seconds: float, finish) -> Trainer:
        return Trainer(self.model, self.runner, self.optimizers, make_loader, self.cfg, self.rt, self.grad_accum,
                       self.periodic_validation, cap_seconds, finish)

    def train(self) -> TrainOutcome:
        cfg, rt = self.cfg, self.rt
        cap, finish = cfg.budget.train_seconds, None
        if reads_training_data(cfg.quant) and cfg.quant.calib_reserve_s > 0:  # GPTQ calibrates inside the cap
            from golf.quant.calibration import calibrate_in_training

            cap, finish = cap - cfg.quant.calib_reserve_s, partial(calibrate_in_training, self)

        def make_loader():
            return build_train_loader(cfg.train, cfg.data.train_pattern, rt.rank, rt.world_size, cfg.seed, rt.device)

        trainer = self.make_trainer(make_loader, max(cap, 0.0), finish)
        with self.reading("train", "warmup"):  # compile warm-up steps before the timer; weights restored after
            trainer.warmup()
        with self.reading("train", "training"):
            self.outcome = trainer.run()
        check_finite_weights(self.model, self.outcome.steps, "before writing the artifact")
        return self.outcome

    # ---- artifact ------------------------------------------------------------------------------------

    def write_artifact(self) -> None:
        """Quantize, check the weights the artifact will reload to, write it (rank 0)."""
        b = self.cfg.budget
        step_state = {**self.model.step_state(), "trained_steps": self.outcome.steps,
                      "train_seq_len": self.outcome.final_seq_len}
        self.quantized = quantize(self.model, self.cfg, b.artifact_limit_bytes - self.code_bytes,
                                  self.rt.autocast_dtype, self.calibration, step_state)
        bad = [name for name, t in self.quantized.state.items()
               if t.is_floating_point() and not torch.isfinite(t).all()]
        if bad:
            raise NonFiniteError(f"the quantized weights of {bad[0]} (and {len(bad) - 1} more) are NaN/inf after "
                                 f"quant={self.cfg.quant.name}: the trained weights overflow the export; no artifact "
                                 f"was written", fix="lower the learning rates or enable optimizer.grad_clip_norm")
        blob = self.quantized.blob
        if self.rt.is_main:
            container.write(self.artifact_path, blob)
        total = len(blob) + self.code_bytes
        headroom = b.artifact_limit_bytes - total
        log.info(f"Serialized model {self.cfg.quant.name}: {len(blob)} bytes")
        log.info(f"Code size: {self.code_bytes} bytes")
        log.info(f"Total submission size {self.cfg.quant.name}: {total} bytes (limit "
                 f"{b.artifact_limit_bytes:,}, headroom {headroom:,})")
        if headroom < 0 and b.enforce_artifact_limit:
            raise ArtifactError(f"artifact {total:,} B exceeds the {b.artifact_limit_bytes:,} B limit "
                                f"by {-headroom:,} B (quant={self.cfg.quant.name})",
                                fix="set quant.fit_budget=true (intn/gptq schemes), use fewer bits (quant=int6_zstd) "
                                    "or shrink the model (arch.*), or set budget.enforce_artifact_limit=false for a "
                                    "non-record run")
        if self.rt.distributed:
            dist.barrier()

    # ---- scoring -------------------------------------------------------------------------------------

    def reload(self):
        """A fresh model rebuilt from the artifact bytes on disk, ready to score."""
        return load_model(self.artifact_path, self.rt.device, self.rt.autocast_dtype, arch_type=type(self.cfg.arch))

    def score(self, on_chunk=None) -> Scores:
        """Every protocol of the run on its own reload of the artifact; each result carries its `seconds`
        from artifact load to final BPB (what the official eval timer counts for that protocol)."""
        cfg = self.cfg
        stride = cfg.eval.stride or self.seq_len
        roundtrip, _ = self.timed(self._full_eval)
        self.final_line(f"final_{cfg.quant.name}_roundtrip", roundtrip)
        sliding = None
        if cfg.eval.name == "sliding":
            from golf.eval.sliding import sliding_protocol

            sliding = sliding_protocol(self, stride)
        ttt = None
        if cfg.ttt.mode != "none":
            from golf.ttt.session import score_ttt

            ttt, self.adapted = score_ttt(self, stride, on_chunk)
        scores = Scores(roundtrip, sliding, ttt, headline_protocol(cfg))
        h = scores.headline_result
        for name, result in (("roundtrip", roundtrip), ("sliding", sliding), ("ttt", ttt)):
            if result is not None and not math.isfinite(result["val_bpb"]):
                raise NonFiniteError(f"the {name} score is {result['val_bpb']} ({result['tokens']:,} tokens): the "
                                     f"artifact's model predicts NaN/inf", fix="lower the learning rates")
        log.info(f"headline val_bpb {h['val_bpb']:.8f} ({HEADLINES[scores.headline]}; eval {h['seconds']:.1f}s)")
        return scores

    def _full_eval(self, model) -> dict:
        return evaluate_full(model, self.ctx)

    def score_sliding(self, model, ctx, stride: int) -> dict:
        """The sliding-window eval of golf.eval.sliding.sliding_protocol (golf.job_pipeline adds the ledger)."""
        from golf.eval.sliding import evaluate_sliding

        return evaluate_sliding(model, ctx, stride)

    def timed(self, protocol) -> tuple[dict, torch.nn.Module]:
        """The protocol's result with `seconds` from artifact load to final BPB, and the model it ran on."""
        t0 = time.perf_counter()
        model = self.reload()
        result = protocol(model)
        result["seconds"] = time.perf_counter() - t0
        return result, model

    @staticmethod
    def final_line(name: str, result: dict) -> None:
        log.info(f"{name} val_loss:{result['val_loss']:.4f} val_bpb:{result['val_bpb']:.4f} "
                 f"eval_time:{1000 * result['seconds']:.0f}ms")
        log.info(f"{name}_exact val_loss:{result['val_loss']:.8f} val_bpb:{result['val_bpb']:.8f}")
