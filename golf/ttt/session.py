"""Evaluation-time stages on a model rebuilt from the artifact: sliding eval and test-time training.

Used by the training job (golf.worker) and by `python -m golf.ttt <job_dir>`, so a protocol gives the
same numbers either way. The legal protocols start from the artifact's weights; `prequant` starts from
the unquantized weights, is reported separately and is never compliant.
"""

import time
from dataclasses import dataclass
from types import SimpleNamespace

import torch

from golf.errors import GolfError
from golf.eval.bpb import ByteTables
from golf.eval.sliding import evaluate_sliding
from golf.ttt.ledger import Ledger
from golf.ttt.lora import run_lora_ttt
from golf.ttt.prequant import run_prequant_ttt
from golf.ttt.stream import run_stream_ttt

PREQUANT_REASON = ("pre-quant TTT adapts on every val token before scoring it "
                   "(C3 of docs/rules.md#c3-score-before-update, PRs #1376/#1972); research only")
DIAGNOSTIC_STRIDE = 64


@dataclass
class EvalInputs:
    val_tokens: torch.Tensor
    tables: ByteTables
    seq_len: int
    bos_id: int
    cfg: object  # GolfConfig
    rt: object  # Runtime

    @property
    def stride(self) -> int:
        return self.cfg.eval.stride or self.seq_len

    @property
    def batch_seqs(self) -> int:
        return max(self.cfg.eval.batch_tokens // self.rt.world_size // self.seq_len, 1)


def sliding_eval(model, inputs: EvalInputs, stride: int | None = None) -> dict:
    """Exact sliding eval; returns the BPB result with its seconds and the ledger's checks."""
    t0 = time.perf_counter()
    c = inputs.cfg
    ledger = Ledger(0, inputs.rt.rank)
    result = evaluate_sliding(model, inputs.val_tokens, inputs.tables, inputs.seq_len, stride or inputs.stride,
                              inputs.batch_seqs, inputs.rt.rank, inputs.rt.world_size, inputs.rt.device,
                              inputs.rt.autocast_dtype, c.eval.max_seqs, ledger)
    ledger.n_predictions = result["tokens"]
    return {**result, "seconds": time.perf_counter() - t0, "checks": ledger.gathered().checks()}


def test_time_train(model, inputs: EvalInputs, float_model=None, on_chunk=None, diagnose: bool = True) -> dict:
    """Run the configured TTT protocol; `model` is the artifact's (adapted in place by the stream
    protocol), `float_model` the unquantized one (only `prequant` reads it). `diagnose` adds the
    memorization diagnostic to a stream protocol's result (an extra sliding eval, not part of the score)."""
    c, rt = inputs.cfg, inputs.rt
    mode = c.ttt.mode.value
    t0 = time.perf_counter()
    if mode == "stream":
        out = run_stream_ttt(model, inputs.val_tokens, inputs.tables, inputs.seq_len, inputs.stride,
                             inputs.batch_seqs, c.ttt, rt, c.eval.max_seqs, on_chunk)
    elif mode == "lora":
        out = run_lora_ttt(model, inputs.val_tokens, inputs.tables, inputs.seq_len, inputs.batch_seqs, c.ttt, rt,
                           inputs.bos_id, c.seed, c.eval.max_seqs, on_chunk)
    else:
        out = run_prequant_ttt(float_model, inputs.val_tokens, inputs.tables, inputs.seq_len, inputs.stride,
                               inputs.batch_seqs, c, rt, c.eval.max_seqs, on_chunk)
    seconds = time.perf_counter() - t0
    checks = out.pop("ledger").gathered().checks()
    result = {**out, "seconds": seconds, "checks": checks, "legal": mode != "prequant",
              "compliant": mode != "prequant" and all(v["pass"] for v in checks.values())}
    if mode == "prequant":
        result["reason"] = PREQUANT_REASON
    if mode == "stream" and diagnose:
        result["memorization"] = memorization_diagnostic(model, inputs, out["val_bpb"])
    return result


def memorization_diagnostic(adapted, inputs: EvalInputs, loop_bpb: float) -> dict:
    """PR #484: a stride-64 sliding eval of the adapted weights next to the TTT-loop BPB. Both see tokens
    the model has trained on by then, so the pair is a diagnostic, never a score: a loop BPB far below
    the sliding one means the loop profited from having just fit those tokens (memorization)."""
    stride = min(DIAGNOSTIC_STRIDE, inputs.seq_len)
    t0 = time.perf_counter()
    c, rt = inputs.cfg, inputs.rt
    sliding = evaluate_sliding(adapted, inputs.val_tokens, inputs.tables, inputs.seq_len, stride, inputs.batch_seqs,
                               rt.rank, rt.world_size, rt.device, rt.autocast_dtype, c.eval.max_seqs)
    gap = sliding["val_bpb"] - loop_bpb
    return {"ttt_loop_bpb": loop_bpb, "sliding_adapted_bpb": sliding["val_bpb"], "stride": stride,
            "gap": gap, "reading": "memorization" if gap > 0 else "adaptation",
            "seconds": time.perf_counter() - t0}


class Choice(str):
    """A config choice read back from JSON, with the `.value` that golf's code reads off the schema's enums."""

    @property
    def value(self) -> str:
        return str(self)


def _settings(tree: dict) -> SimpleNamespace:
    return SimpleNamespace(**{k: _settings(v) if isinstance(v, dict) else Choice(v) if isinstance(v, str) else v
                              for k, v in tree.items()})


def score_with_settings(model, val_tokens: torch.Tensor, tables: ByteTables, seq_len: int, bos_id: int,
                        ttt: dict, seed: int, stride: int, max_seqs: int, batch_seqs: int, device: torch.device,
                        autocast_dtype) -> dict:
    """The run's legal TTT protocol (its `ttt` config section, as saved in a record's ttt.json), in one process:
    what the exported scoring script runs to reproduce a TTT run's headline score from the artifact."""
    cfg = _settings({"ttt": ttt, "seed": seed,
                     "eval": {"stride": stride, "max_seqs": max_seqs, "batch_tokens": batch_seqs * seq_len}})
    if cfg.ttt.mode.value not in ("stream", "lora"):
        raise GolfError(f"ttt.mode={cfg.ttt.mode.value} is not a legal protocol; a score needs stream or lora TTT")
    rt = SimpleNamespace(device=device, rank=0, world_size=1, distributed=False, is_main=True,
                         autocast_dtype=autocast_dtype)
    return test_time_train(model, EvalInputs(val_tokens, tables, seq_len, bos_id, cfg, rt), diagnose=False)
