"""One golf training job: the shared pipeline (golf.pipeline) plus what golf adds around it — the job dir's
results.json, metrics.jsonl and W&B run, checkpoints and preemption, and the compliance block.

Runs in-process for world size 1, or as every rank under `torchrun -m golf.worker <job_dir>`. It reads
only the resolved `config.yaml` of its job dir, so all ranks see the same config. Rank 0 owns the files
(results.json, metrics.jsonl, train.log, artifact) and the W&B run.
"""

import logging
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from golf import preemption
from golf.checkpoint import Checkpointer, config_sha256
from golf.compliance import compliance, data_checks, eval_timer
from golf.data import access
from golf.data.shards import find_shards
from golf.errors import GolfError
from golf.job_pipeline import JobPipeline
from golf.jobdir import JobDir
from golf.logging.console import setup_logging
from golf.logging.results import ArtifactInfo, Metrics, Results, Timing
from golf.logging.sinks import MetricSink
from golf.logging.snr_plot import plot_snr
from golf.pipeline import Scores
from golf.utils.atomic import atomic_write
from golf.utils.runtime import setup_runtime, teardown_runtime

log = logging.getLogger(__name__)
EXIT_INTERRUPTED = 3  # a rank stopped on a preemption signal after checkpointing


class Job:
    """The stages of one run, in order; `stage` names where a failure happened."""

    def __init__(self, job_dir: Path):
        self.jd = JobDir(job_dir)
        resolved = self.jd.resolved_config()
        self.cfg = self.jd.load_config()
        self.rt = setup_runtime(self.cfg.train)
        setup_logging(self.jd.train_log, self.rt.rank)
        preemption.install()
        self.results = Results(self.jd.path) if self.rt.is_main else None
        self.sink = MetricSink(self.jd.path, self.cfg, resolved, self.rt.rank)
        checkpointer = Checkpointer(self.jd.path, config_sha256(resolved), self.rt)
        # the run's train_gpt.py, written by golf.train: its size is the run's counted code
        self.pipeline = JobPipeline(self.cfg, self.rt, self.jd.artifact, self.jd.train_script.stat().st_size,
                                    self.sink, checkpointer)
        self.stage = "setup"

    def record(self, section: str | None = None, **fields) -> None:
        if self.results is not None:
            self.results.update(section, **fields)

    def train(self):
        self.stage = "data"
        self.pipeline.load_data()
        self.stage = "build"
        self.record("model", **self.pipeline.build())
        self.stage = "train"
        outcome = self.pipeline.train()
        preemption.stop_immediately(outcome.steps)
        if outcome.resumed_from:
            self.record("resumed", from_step=outcome.resumed_from)
        self.record(averaging=outcome.averaging)
        self.record("snr", train=outcome.snr)
        return outcome

    def write_artifact(self, outcome) -> dict:
        self.stage = "quantize"
        if self.rt.is_main and self.cfg.quant.save_prequant:
            state = self.pipeline.model.state_dict()
            atomic_write(self.jd.prequant, lambda f: torch.save(state, f))
        info = self.pipeline.write_artifact()
        artifact = ArtifactInfo(**{k: info[k] for k in ("bytes_total", "bytes_model", "bytes_code", "limit_bytes",
                                                         "headroom_bytes", "compressor", "quant", "sha256")},
                                path=str(self.jd.artifact.relative_to(self.jd.path)))
        self.record(artifact=artifact)
        self.record("quant", **info["quant_info"])
        self.sink.log(outcome.steps, {f"artifact/{k}": v for k, v in info.items() if isinstance(v, int)})
        return info

    def score(self, outcome) -> Scores:
        self.stage = "eval"
        steps = outcome.steps
        scores = self.pipeline.score(on_chunk=lambda i, m: self.sink.log(steps + i, m))
        for name in ("roundtrip", "sliding", "ttt"):
            result = getattr(scores, name)
            if result is not None:
                self.sink.log(steps, {f"eval/bpb_{name}": result["val_bpb"], f"eval/loss_{name}": result["val_loss"]})
        if scores.ttt is not None:
            self._record_ttt(scores.ttt)
        return scores

    def _record_ttt(self, t: dict) -> None:
        self.record(ttt={"name": self.cfg.ttt.name, "mode": self.cfg.ttt.mode, "legal": t["legal"],
                         "compliant": t["compliant"], "reason": t.get("reason"), "val_bpb": t["val_bpb"],
                         "val_loss": t["val_loss"], "seconds": round(t["seconds"], 3), "checks": t["checks"],
                         "memorization": t.get("memorization"),
                         **{k: t[k] for k in ("chunks", "documents", "queue", "phases", "ngram_tilt", "bytes_model")
                            if k in t}})
        if t.get("snr"):
            self.record("snr", ttt=t["snr"])

    def metrics(self, outcome, scores: Scores) -> Metrics:
        r, s, t, h = scores.roundtrip, scores.sliding, scores.ttt, scores.headline_result
        legal_ttt = t is not None and t["legal"]
        last_val = self.pipeline.last_val
        return Metrics(
            val_bpb=h["val_bpb"], val_loss=h["val_loss"], headline=scores.headline, val_tokens=h["tokens"],
            val_bytes=h["bytes"], val_bpb_roundtrip=r["val_bpb"], val_loss_roundtrip=r["val_loss"],
            val_bpb_prequant=last_val["val_bpb"], val_loss_prequant=last_val["val_loss"],
            train_loss_final=outcome.train_loss, steps=outcome.steps, tokens_seen=outcome.tokens_seen,
            val_bpb_sliding=s["val_bpb"] if s else None, val_loss_sliding=s["val_loss"] if s else None,
            val_bpb_ttt=t["val_bpb"] if legal_ttt else None, val_loss_ttt=t["val_loss"] if legal_ttt else None,
            val_bpb_prequant_ttt=t["val_bpb"] if t is not None and not legal_ttt else None,
            unk_targets=h["unk_targets"])

    def timing(self, outcome, info: dict, scores: Scores, timer: dict) -> Timing:
        s, t = scores.sliding, scores.ttt
        return Timing(train_s=round(outcome.train_seconds, 3), quant_s=info["quant_s"], eval_s=timer["seconds"],
                      eval_measured_s=timer["measured_s"], eval_devices=timer["devices"],
                      roundtrip_s=round(scores.roundtrip["seconds"], 3),
                      sliding_s=round(s["seconds"], 3) if s else None, ttt_s=round(t["seconds"], 3) if t else None,
                      diagnostics_s=round(((t or {}).get("memorization") or {}).get("seconds", 0.0), 3))

    def compliance(self, outcome, info: dict, scores: Scores, timer: dict) -> dict:
        overlap = (self.results.data.get("data") or {}).get("disjoint")
        val_files = {str(p.resolve()) for p in find_shards(self.cfg.data.val_pattern)}
        data = data_checks(access.LOG, val_files, overlap)
        return compliance(self.cfg, info, outcome, scores, timer, data)

    def finish(self, outcome, info: dict, scores: Scores) -> None:
        self.stage = "finish"
        timer = eval_timer(self.cfg.budget, scores.headline_result["seconds"], scores.headline, self.rt.world_size)
        metrics = self.metrics(outcome, scores)
        ranks = self.check_ranks_agree(scores)
        if self.results is None:
            return
        checks = self.compliance(outcome, info, scores, timer)
        self.record(ranks=ranks)
        self.results.write("metrics", metrics)
        self.results.write("timing", self.timing(outcome, info, scores, timer))
        self.record(compliance=checks, wandb=self.sink.info())
        plot = plot_snr(self.results.data.get("snr") or {}, self.jd.path / "snr_scales.png", self.cfg.run_name)
        self.record("snr", plot=plot.name if plot else None)
        self.sink.summary(self.results.data)
        self.results.complete()

    def check_ranks_agree(self, scores: Scores) -> list[dict]:
        """Every rank must end with the same weights and the same score; a mismatch means a desync."""
        model = self.pipeline.model
        mine = {"rank": self.rt.rank, "val_bpb": scores.headline_result["val_bpb"],
                "weights_sum": float(sum(p.detach().double().sum() for p in model.parameters()))}
        if not self.rt.distributed:
            return [mine]
        everyone = [None] * self.rt.world_size
        dist.all_gather_object(everyone, mine)
        if any({k: v for k, v in r.items() if k != "rank"} != {k: v for k, v in mine.items() if k != "rank"}
               for r in everyone):
            raise GolfError(f"ranks disagree after training: {everyone}; the ranks desynchronized (report this bug)")
        return everyone

    def run(self) -> None:
        try:
            outcome = self.train()
            self.record("metrics", val_bpb_prequant=self.pipeline.last_val["val_bpb"],
                        val_loss_prequant=self.pipeline.last_val["val_loss"], train_loss_final=outcome.train_loss,
                        steps=outcome.steps, tokens_seen=outcome.tokens_seen)
            self.record("timing", train_s=round(outcome.train_seconds, 3))
            info = self.write_artifact(outcome)
            scores = self.score(outcome)
            self.finish(outcome, info, scores)
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
