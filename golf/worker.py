"""One training job: build, train, quantize, write the artifact, reload it, score it.

Runs in-process for world size 1, or as every rank under `torchrun -m golf.worker <job_dir>`.
It reads only the resolved `config.yaml` of its job dir, so all ranks see the same config.
Rank 0 owns the files (results.json, metrics.jsonl, train.log, artifact) and the W&B run.
"""

import logging
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from omegaconf import OmegaConf
from torch.nn.parallel import DistributedDataParallel

from golf import preemption
from golf.artifact import container as artifact
from golf.checkpoint import Checkpointer, config_sha256
from golf.config.schema import GolfConfig
from golf.config.validate import eval_seq_len, grad_accum_steps
from golf.data.loader import load_validation_tokens
from golf.data.tokenizer import check_tokens_in_vocab, check_vocab, load_tokenizer
from golf.data.train_loader import build_train_loader
from golf.errors import ArtifactError, GolfError
from golf.eval.bpb import build_byte_tables
from golf.eval.full import evaluate_full
from golf.guards import check_finite_weights
from golf.logging.console import setup_logging
from golf.logging.results import Results
from golf.logging.sinks import MetricSink
from golf.models.layers import apply_baseline_precision
from golf.models.registry import build_model, load_model
from golf.optim.param_groups import build_optimizers, split_parameters
from golf.quant.code_bytes import count_code_bytes
from golf.quant.quantize import quantize
from golf.trainer import Trainer
from golf.ttt.plot import plot_snr_scales
from golf.ttt.session import EvalInputs, sliding_eval, test_time_train
from golf.utils.compile import compile_model
from golf.utils.runtime import seed_everything, setup_runtime, teardown_runtime

log = logging.getLogger(__name__)
ARTIFACT_NAME = "model.golf"
PREQUANT_NAME = "prequant.pt"  # unquantized weights, input of `python -m golf.quant`
EXIT_INTERRUPTED = 3  # a rank stopped on a preemption signal after checkpointing


def load_job_config(job_dir: Path) -> tuple[GolfConfig, dict]:
    resolved = OmegaConf.load(Path(job_dir) / "config.yaml")
    typed = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(GolfConfig), resolved))
    return typed, OmegaConf.to_container(resolved)


def _barrier(rt) -> None:
    if rt.distributed:
        dist.barrier()


def _prepare_model(model, rt):
    if rt.autocast_dtype == torch.bfloat16:
        apply_baseline_precision(model)
    return model.to(rt.device)


class Job:
    """The stages of one run, in order; `stage` names where a failure happened."""

    def __init__(self, job_dir: Path):
        self.job_dir = Path(job_dir)
        self.cfg, self.resolved = load_job_config(self.job_dir)
        self.rt = setup_runtime(self.cfg.train)
        setup_logging(self.job_dir, self.rt.rank)
        preemption.install()
        self.checkpointer = Checkpointer(self.job_dir, config_sha256(self.resolved), self.rt)
        self.results = Results(self.job_dir) if self.rt.is_main else None
        self.sink = MetricSink(self.job_dir, self.cfg, self.resolved, self.rt.rank)
        self.stage = "setup"
        self.grad_accum = grad_accum_steps(self.cfg, self.rt.world_size)
        self.val_seq_len = eval_seq_len(self.cfg)
        self.last_val: dict = {}

    def record(self, section: str | None = None, **fields) -> None:
        if self.results is not None:
            self.results.update(section, **fields)

    def load_data(self) -> None:
        self.stage = "data"
        d = self.cfg.data
        sp = load_tokenizer(d.tokenizer_path)
        check_vocab(sp, self.cfg.arch.vocab_size, d.tokenizer_path)
        self.tables = build_byte_tables(sp, self.cfg.arch.vocab_size).to(self.rt.device)
        self.val_tokens = load_validation_tokens(d.val_pattern, self.val_seq_len)
        check_tokens_in_vocab(self.val_tokens.numpy(), self.cfg.arch.vocab_size, d.val_pattern)
        log.info(f"data: {d.name} val_tokens {self.val_tokens.numel() - 1:,} tokenizer {d.tokenizer_path}")

    def build(self) -> None:
        self.stage = "build"
        seed_everything(self.cfg.seed)
        self.model = _prepare_model(build_model(self.cfg.arch), self.rt)
        groups = split_parameters(self.model, self.cfg.optimizer)
        counts = {role: sum(p.numel() for _, p in named) for role, named in groups.items()}
        n_params = sum(p.numel() for p in self.model.parameters())
        log.info(f"model: {self.cfg.arch.name} params {n_params:,} by group {counts}")
        self.record("model", n_params=n_params, n_params_by_group=counts)
        runner = compile_model(self.model) if self.rt.compile else self.model
        if self.rt.distributed:
            runner = DistributedDataParallel(runner, device_ids=[self.rt.local_rank] if self.rt.device.type == "cuda"
                                             else None, broadcast_buffers=False)
        self.runner = runner
        self.optimizers = build_optimizers(self.model, self.cfg.optimizer, self.cfg.arch.tie_embeddings,
                                           fused=self.rt.device.type == "cuda", compiled=self.rt.compile)

    def evaluate(self, model) -> dict:
        batch_seqs = self.cfg.eval.batch_tokens // (self.rt.world_size * self.grad_accum) // self.val_seq_len
        return evaluate_full(model, self.val_tokens, self.tables, self.val_seq_len, batch_seqs, self.rt.rank,
                             self.rt.world_size, self.rt.device, self.rt.autocast_dtype, self.cfg.eval.max_seqs)

    def periodic_validation(self, step: int, training_ms: float) -> None:
        self.last_val = self.evaluate(self.model)
        log.info(f"step {step} val_loss {self.last_val['val_loss']:.4f} val_bpb {self.last_val['val_bpb']:.4f} "
                 f"train_time {training_ms / 1000:.1f}s")
        self.sink.log(step, {"val/loss": self.last_val["val_loss"], "val/bpb": self.last_val["val_bpb"]})

    def train(self) -> None:
        self.stage = "train"
        d, rt = self.cfg.data, self.rt
        make_loader = lambda: build_train_loader(self.cfg.train, d.train_pattern, rt.rank, rt.world_size,  # noqa: E731
                                                 self.cfg.seed, rt.device)
        trainer = Trainer(self.model, self.runner, self.optimizers, make_loader, self.cfg, rt, self.grad_accum,
                          self.periodic_validation, self.sink, self.checkpointer)
        trainer.warmup()
        self.outcome = trainer.run()
        check_finite_weights(self.model, self.outcome.steps, "before writing the artifact")
        preemption.stop_immediately(self.outcome.steps)
        if self.outcome.resumed_from:
            self.record("resumed", from_step=self.outcome.resumed_from)
        self.record(averaging=self.outcome.averaging)
        self.record("metrics", val_bpb_prequant=self.last_val["val_bpb"], val_loss_prequant=self.last_val["val_loss"],
                    train_loss_final=self.outcome.train_loss, steps=self.outcome.steps,
                    tokens_seen=self.outcome.tokens_seen)
        self.record("timing", train_s=round(self.outcome.train_seconds, 3))

    def write_artifact(self) -> None:
        self.stage = "quantize"
        self.artifact_path = self.job_dir / "artifact" / ARTIFACT_NAME
        t0 = time.perf_counter()
        b = self.cfg.budget
        bytes_code, code_files = count_code_bytes(self.cfg)
        if self.rt.is_main and self.cfg.quant.save_prequant:
            torch.save(self.model.state_dict(), self.job_dir / PREQUANT_NAME)
        exported = quantize(self.model, self.cfg, b.artifact_limit_bytes - bytes_code, self.rt.autocast_dtype)
        blob = exported.blob
        self.record("quant", **exported.info)
        self.artifact_info = {
            "bytes_total": len(blob) + bytes_code, "bytes_model": len(blob), "bytes_code": bytes_code,
            "limit_bytes": b.artifact_limit_bytes, "headroom_bytes": b.artifact_limit_bytes - len(blob) - bytes_code,
            "compressor": f"{self.cfg.quant.compressor.value}-{self.cfg.quant.level}", "quant": self.cfg.quant.name,
            "path": f"artifact/{ARTIFACT_NAME}", "code_files": code_files,
        }
        if self.rt.is_main:
            artifact.write(self.artifact_path, blob)
            self.artifact_info["sha256"] = artifact.payload_sha256(blob)
            self.record(artifact=self.artifact_info)
            self.record("timing", quant_s=round(time.perf_counter() - t0, 3))
        self.sink.log(self.outcome.steps, {f"artifact/{k}": v for k, v in self.artifact_info.items()
                                           if isinstance(v, int)})
        log.info(f"artifact: {self.artifact_info['bytes_total']:,} bytes = model {len(blob):,} + code {bytes_code:,} "
                 f"(limit {b.artifact_limit_bytes:,}, headroom {self.artifact_info['headroom_bytes']:,})")
        if self.artifact_info["headroom_bytes"] < 0 and b.enforce_artifact_limit:
            raise ArtifactError(f"artifact {self.artifact_info['bytes_total']:,} B exceeds the "
                                f"{b.artifact_limit_bytes:,} B limit by {-self.artifact_info['headroom_bytes']:,} B "
                                f"(quant={self.cfg.quant.name}); set quant.fit_budget=true (intn/gptq schemes), "
                                f"use fewer bits (quant=int6_zstd) or shrink the model (arch.*), or set "
                                f"budget.enforce_artifact_limit=false for a non-record run")
        _barrier(self.rt)

    def score_round_trip(self) -> None:
        """The headline number: evaluate a fresh model rebuilt from the artifact bytes on disk."""
        self.stage = "eval"
        t0 = time.perf_counter()
        reloaded = load_model(self.artifact_path, self.rt.device, self.rt.autocast_dtype)
        self.final = self.evaluate(reloaded)
        self.eval_seconds = time.perf_counter() - t0
        log.info(f"final round trip: val_loss {self.final['val_loss']:.6f} val_bpb {self.final['val_bpb']:.8f} "
                 f"({self.final['tokens']:,} tokens, {self.final['bytes']:,} bytes, {self.eval_seconds:.1f}s)")

    def eval_inputs(self) -> EvalInputs:
        sp = load_tokenizer(self.cfg.data.tokenizer_path)
        return EvalInputs(self.val_tokens, self.tables, self.val_seq_len, int(sp.bos_id()), self.cfg, self.rt)

    def score_sliding(self) -> None:
        """eval=sliding*: the exact sliding eval of a fresh artifact model, counted in the eval time."""
        self.sliding = None
        if self.cfg.eval.name.value != "sliding":
            return
        self.stage = "eval_sliding"
        reloaded = load_model(self.artifact_path, self.rt.device, self.rt.autocast_dtype)
        self.sliding = sliding_eval(reloaded, self.eval_inputs())
        self.eval_seconds += self.sliding["seconds"]
        log.info(f"sliding eval (stride {self.cfg.eval.stride}): val_bpb {self.sliding['val_bpb']:.8f} "
                 f"({self.sliding['tokens']:,} tokens, {self.sliding['seconds']:.1f}s)")
        self.sink.log(self.outcome.steps, {"eval/bpb_sliding": self.sliding["val_bpb"],
                                           "eval/loss_sliding": self.sliding["val_loss"]})

    def test_time_train(self) -> None:
        """ttt=*: legal protocols adapt a fresh artifact model score-first (eval time, counted in the
        budget); ttt=prequant_adamw adapts a copy of the unquantized model and is reported aside."""
        self.ttt = None
        if self.cfg.ttt.mode.value == "none":
            return
        self.stage = "ttt"
        reloaded = load_model(self.artifact_path, self.rt.device, self.rt.autocast_dtype)
        steps = self.outcome.steps
        self.ttt = test_time_train(reloaded, self.eval_inputs(), float_model=self.model,
                                   on_chunk=lambda i, m: self.sink.log(steps + i, m))
        if self.ttt["legal"]:
            self.eval_seconds += self.ttt["seconds"]
        log.info(f"ttt {self.cfg.ttt.name} ({self.cfg.ttt.mode.value}): val_bpb {self.ttt['val_bpb']:.8f} "
                 f"in {self.ttt['seconds']:.1f}s; legality {'ok' if self.ttt['compliant'] else 'FAILED'} "
                 f"{ {k: v['pass'] for k, v in self.ttt['checks'].items()} }")
        if self.ttt.get("memorization"):
            m = self.ttt["memorization"]
            log.info(f"memorization diagnostic: ttt loop {m['ttt_loop_bpb']:.6f} vs sliding on adapted weights "
                     f"{m['sliding_adapted_bpb']:.6f} (gap {m['gap']:+.6f}: {m['reading']})")
        if self.ttt.get("snr") and self.ttt["snr"]["steps"] and self.rt.is_main:
            plot_snr_scales(self.ttt["snr"], self.job_dir / "snr_scales.png", f"ttt={self.cfg.ttt.name}")

    def legality_checks(self) -> dict:
        """Score-first checks from the ledger of whichever protocol produced the headline."""
        if self.ttt is not None and self.ttt["legal"]:
            return self.ttt["checks"]
        if self.sliding is not None:
            checks = dict(self.sliding["checks"])
        else:
            checks = {"each_token_scored_once": {"pass": True, "value": "non-overlapping eval"},
                      "no_val_in_calibration": {"pass": True, "value": 0}}
        checks["score_before_update"] = {"pass": True, "value": "no test-time training"}
        if self.ttt is not None:
            checks["legal_ttt_protocol"] = {"pass": False, "value": self.ttt["reason"]}
        return checks

    def check_ranks_agree(self) -> list[dict]:
        """Every rank must end with the same weights and the same score; a mismatch means a desync."""
        mine = {"rank": self.rt.rank, "val_bpb": self.final["val_bpb"],
                "weights_sum": float(sum(p.detach().double().sum() for p in self.model.parameters()))}
        if not self.rt.distributed:
            return [mine]
        everyone = [None] * self.rt.world_size
        dist.all_gather_object(everyone, mine)
        if any({k: v for k, v in r.items() if k != "rank"} != {k: v for k, v in mine.items() if k != "rank"}
               for r in everyone):
            raise GolfError(f"ranks disagree after training: {everyone}; the ranks desynchronized (report this bug)")
        return everyone

    def compliance(self) -> dict:
        b, info = self.cfg.budget, self.artifact_info
        checks = {
            "artifact_under_limit": {"pass": info["bytes_total"] <= b.artifact_limit_bytes,
                                     "value": info["bytes_total"], "limit": b.artifact_limit_bytes},
            "full_validation_split": {"pass": self.cfg.eval.max_seqs == 0, "value": self.final["tokens"]},
            # The official cap rule: training stops at the first step that ends past the cap, so the last
            # step may end after it; what must hold is that no step started after it.
            "train_under_budget": {"pass": b.train_seconds <= 0 or self.outcome.train_seconds <= b.train_seconds
                                   or self.outcome.last_step_start_s < b.train_seconds,
                                   "value": round(self.outcome.train_seconds, 3), "limit": b.train_seconds,
                                   "last_step_started_s": round(self.outcome.last_step_start_s, 3)},
            "eval_under_budget": {"pass": b.eval_seconds <= 0 or self.eval_seconds <= b.eval_seconds,
                                  "value": round(self.eval_seconds, 3), "limit": b.eval_seconds},
            **self.legality_checks(),
        }
        return {"compliant": all(c["pass"] for c in checks.values()), "budget": b.name, "checks": checks}

    def ttt_metrics(self) -> dict:
        """val_bpb_sliding / val_bpb_ttt, the ttt and snr sections; the headline val_bpb becomes the
        legal TTT score when a legal protocol ran (pre-quant TTT never becomes the headline)."""
        out = {}
        if self.sliding is not None:
            out["val_bpb_sliding"] = self.sliding["val_bpb"]
            out["val_loss_sliding"] = self.sliding["val_loss"]
        if self.ttt is None:
            return out
        t = self.ttt
        key = "val_bpb_ttt" if t["legal"] else "val_bpb_prequant_ttt"
        out[key] = t["val_bpb"]
        if t["legal"]:
            out.update(val_bpb=t["val_bpb"], val_loss=t["val_loss"], val_tokens=t["tokens"], val_bytes=t["bytes"])
        self.record(ttt={"name": self.cfg.ttt.name, "mode": self.cfg.ttt.mode.value, "legal": t["legal"],
                         "compliant": t["compliant"], "reason": t.get("reason"), "val_bpb": t["val_bpb"],
                         "val_loss": t["val_loss"], "seconds": round(t["seconds"], 3), "checks": t["checks"],
                         "memorization": t.get("memorization"),
                         **{k: t[k] for k in ("chunks", "documents", "bytes_model") if k in t}})
        if t.get("snr"):
            self.record(snr={**t["snr"], "plot": "snr_scales.png" if t["snr"]["steps"] else None})
        self.sink.log(self.outcome.steps, {f"ttt/{'bpb' if t['legal'] else 'bpb_prequant'}": t["val_bpb"]})
        return out

    def finish(self) -> None:
        self.stage = "finish"
        metrics = {"val_bpb": self.final["val_bpb"], "val_loss": self.final["val_loss"],
                   "val_bpb_postquant": self.final["val_bpb"], "val_tokens": self.final["tokens"],
                   "val_bytes": self.final["bytes"], "val_unk_targets": self.final["unk_targets"]}
        metrics.update(self.ttt_metrics())
        compliance = self.compliance()
        self.record(ranks=self.check_ranks_agree())
        self.record("metrics", **metrics)
        self.record("timing", eval_s=round(self.eval_seconds, 3))
        self.record(compliance=compliance, wandb=self.sink.info())
        self.sink.log(self.outcome.steps, {"val/bpb": self.final["val_bpb"], "val/loss": self.final["val_loss"]})
        self.sink.summary({**metrics, "bytes_total": self.artifact_info["bytes_total"],
                           "val_bpb_prequant": self.last_val["val_bpb"], "compliant": compliance["compliant"]})
        if self.results is not None:
            self.results.complete()

    def run(self) -> None:
        try:
            self.load_data()
            self.build()
            self.train()
            self.write_artifact()
            self.score_round_trip()
            self.score_sliding()
            self.test_time_train()
            self.finish()
            self.sink.finish(0)
        except preemption.Preempted as exc:
            if self.results is not None:
                self.results.interrupt(exc, exc.step)
            self.sink.finish(1)
            preemption.forward(exc.signum)
            raise
        except BaseException as exc:
            if self.results is not None:
                self.results.fail(exc, self.stage)
            self.sink.finish(1)
            raise
        finally:
            preemption.uninstall()
            teardown_runtime()


def run(job_dir: Path) -> None:
    Job(job_dir).run()


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m golf.worker <job_dir>  (normally started by python -m golf.train)")
    try:
        run(Path(sys.argv[1]))
    except preemption.Preempted as exc:
        print(f"{exc}; checkpoint written", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except GolfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
