"""Evaluation and score-first TTT speed: golf's code vs a plain PyTorch loop, extrapolated to the
official validation set on 8 GPUs against the 600 s evaluation budget.

    python -m benchmarks.eval_ttt +experiment=cpu_demo [overrides] [--modes full,sliding,ttt]
        [--max-seqs 64] [--stride 64] [--repeats 2] [--job DIR]

Modes: `full` (non-overlapping sequences), `sliding` (exact sliding windows at --stride) and `ttt`
(the configured score-first protocol; `ttt=sgd` if the config has none). Each mode runs golf's real
code path (golf.eval / golf.ttt) and a minimal plain loop doing the same work on the same model:
the same windows, forwards, backward passes and optimizer steps, with no ledger, no SNR statistics,
no logging. One untimed plain pass warms the
allocator and kernels, then repeats alternate the two (ABBA). The model is `--job DIR`'s artifact, or a fresh
initialisation of the config (speed does not depend on the weights).

Extrapolation: seconds on the official sp1024 val set (62,021,632 predictions) sharded over 8 such
devices = 62,021,632 / (8 x predictions/s); golf shards eval and TTT across ranks with no repeated
work, so this assumes linear scaling and ignores the all-reduces (a lower bound on 8 real GPUs).
Results: benchmarks/results/eval_ttt.{jsonl,md}.
"""

import argparse
import statistics
import time
from pathlib import Path

import torch

from benchmarks.common import device_name, load_config, peak_memory_mb, record, sync
from golf.data.loader import load_validation_tokens
from golf.data.tokenizer import load_tokenizer
from golf.eval.bpb import build_byte_tables
from golf.eval.full import evaluate_full
from golf.eval.sliding import autocast_context, evaluate_sliding, n_predictions, sliding_windows
from golf.models.layers import apply_baseline_precision
from golf.models.registry import build_model
from golf.quant import artifact
from golf.ttt.session import EvalInputs, test_time_train
from golf.ttt.stream import chunk_windows
from golf.utils.runtime import seed_everything, setup_runtime

OFFICIAL_VAL_PREDICTIONS = 62_021_632
EVAL_BUDGET_S = 600.0
GPUS = 8


def make_model(cfg, rt, job: Path | None) -> torch.nn.Module:
    seed_everything(cfg.seed)
    model = artifact.load_model(job / "artifact" / "model.golf", torch.device("cpu")) if job else build_model(cfg.arch)
    if rt.autocast_dtype == torch.bfloat16:
        apply_baseline_precision(model)
    return model.to(rt.device)


def _forward_nll(model, x, y, rt) -> torch.Tensor:
    with autocast_context(rt.device, rt.autocast_dtype):
        return model(x, y, reduction="none")


def _window_batch(windows, val, seq_len, device):
    x = torch.zeros(len(windows), seq_len, dtype=torch.int64)
    y = torch.zeros(len(windows), seq_len, dtype=torch.int64)
    for row, w in enumerate(windows):
        chunk = val[w.start : w.start + w.length + 1].to(torch.int64)
        x[row, : w.length], y[row, : w.length] = chunk[:-1], chunk[1:]
    return x.to(device), y.to(device)


def plain_score(model, windows, val, tables, seq_len, batch_seqs, rt) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of NLL and of bytes over the windows' scored positions."""
    loss = torch.zeros((), dtype=torch.float64, device=rt.device)
    nbytes = torch.zeros((), dtype=torch.float64, device=rt.device)
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(windows), batch_seqs):
            batch = windows[i : i + batch_seqs]
            x, y = _window_batch(batch, val, seq_len, rt.device)
            nll = _forward_nll(model, x, y, rt)
            for row, w in enumerate(batch):
                span = slice(w.score_from, w.length)
                loss += nll[row, span].double().sum()
                nbytes += tables.target_bytes(x[row, span], y[row, span]).double().sum()
    return loss, nbytes


def plain_train(model, optimizer, val, a, b, seq_len, batch_seqs, epochs, rt) -> None:
    model.train()
    starts = list(range(a, b - seq_len + 1, seq_len))
    for _ in range(epochs):
        for i in range(0, len(starts), batch_seqs):
            rows = torch.stack([val[s : s + seq_len + 1].to(torch.int64) for s in starts[i : i + batch_seqs]])
            rows = rows.to(rt.device)
            with autocast_context(rt.device, rt.autocast_dtype):
                loss = model(rows[:, :-1], rows[:, 1:])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)


def run_plain(mode, model, inputs: EvalInputs, stride: int) -> float:
    c, rt, val, seq_len = inputs.cfg, inputs.rt, inputs.val_tokens, inputs.seq_len
    n = n_predictions(val, seq_len, c.eval.max_seqs)
    windows = sliding_windows(n, seq_len, seq_len if mode == "full" else stride)
    sync(rt.device)
    t0 = time.perf_counter()
    if mode in ("full", "sliding"):
        plain_score(model, windows, val, inputs.tables, seq_len, inputs.batch_seqs, rt)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=c.ttt.lr, momentum=c.ttt.momentum)
        chunks = chunk_windows(windows, c.ttt.chunk_tokens)
        for index, chunk in enumerate(chunks):
            plain_score(model, chunk, val, inputs.tables, seq_len, inputs.batch_seqs, rt)
            if index < len(chunks) - 1:
                plain_train(model, optimizer, val, chunk[0].scored[0], chunk[-1].scored[1], c.ttt.seq_len or seq_len,
                            c.ttt.batch_seqs, c.ttt.epochs, rt)
    sync(rt.device)
    return time.perf_counter() - t0


def run_golf(mode, model, inputs: EvalInputs, stride: int) -> tuple[float, dict]:
    c, rt = inputs.cfg, inputs.rt
    sync(rt.device)
    t0 = time.perf_counter()
    if mode == "full":
        out = evaluate_full(model, inputs.val_tokens, inputs.tables, inputs.seq_len, inputs.batch_seqs, rt.rank,
                            rt.world_size, rt.device, rt.autocast_dtype, c.eval.max_seqs)
    elif mode == "sliding":
        out = evaluate_sliding(model, inputs.val_tokens, inputs.tables, inputs.seq_len, stride, inputs.batch_seqs,
                               rt.rank, rt.world_size, rt.device, rt.autocast_dtype, c.eval.max_seqs)
    else:
        out = test_time_train(model, inputs)
    sync(rt.device)
    # The memorization diagnostic (an extra sliding eval after the pass) is not part of the protocol's cost.
    return time.perf_counter() - t0 - out.get("memorization", {}).get("seconds", 0.0), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="full,sliding,ttt")
    parser.add_argument("--max-seqs", type=int, default=64, help="val sequences to time (0: the whole split)")
    parser.add_argument("--stride", type=int, default=64, help="sliding and TTT window stride")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--job", type=Path, help="time this finished job's artifact instead of a fresh model")
    args, overrides = parser.parse_known_args()
    has_ttt = any(o.startswith("ttt=") for o in overrides)
    cfg = load_config([*overrides, *([] if has_ttt else ["ttt=sgd"]), f"eval.max_seqs={args.max_seqs}",
                       f"eval.stride={args.stride}"])
    rt = setup_runtime(cfg.train)
    sp = load_tokenizer(cfg.data.tokenizer_path)
    seq_len = cfg.eval.seq_len or cfg.train.seq_len
    inputs = EvalInputs(load_validation_tokens(cfg.data.val_pattern, seq_len),
                        build_byte_tables(sp, cfg.arch.vocab_size).to(rt.device), seq_len, int(sp.bos_id()), cfg, rt)
    device = device_name(rt.device)
    for mode in args.modes.split(","):
        golf_s, plain_s, result = [], [], {}
        run_plain(mode, make_model(cfg, rt, args.job), inputs, args.stride)  # untimed: first-call costs
        for i in range(args.repeats):  # ABBA; every timing starts from the same weights
            for which in (("plain", "golf") if i % 2 == 0 else ("golf", "plain")):
                model = make_model(cfg, rt, args.job)
                if which == "plain":
                    plain_s.append(run_plain(mode, model, inputs, args.stride))
                else:
                    seconds, result = run_golf(mode, model, inputs, args.stride)
                    golf_s.append(seconds)
        seconds = statistics.median(golf_s)
        predictions = result["tokens"]
        per_s = predictions / seconds
        official_s = OFFICIAL_VAL_PREDICTIONS / (GPUS * per_s)
        row = {
            "bench": "eval_ttt", "mode": mode, "device": device, "torch": torch.__version__, "overrides": overrides,
            "arch": f"{cfg.arch.name} {cfg.arch.num_layers}x{cfg.arch.model_dim}", "seq_len": seq_len,
            "stride": seq_len if mode == "full" else args.stride,
            "ttt": cfg.ttt.name if mode == "ttt" else None, "predictions": predictions,
            "golf_s": round(seconds, 3), "plain_s": round(statistics.median(plain_s), 3),
            "framework_over_plain": round(seconds / statistics.median(plain_s), 4),
            "predictions_per_s": round(per_s), "peak_memory_mb": round(peak_memory_mb(rt.device)),
            "official_val_s_on_8": round(official_s, 1), "fits_600s": official_s <= EVAL_BUDGET_S,
            "val_bpb": result["val_bpb"], "job": str(args.job) if args.job else None,
        }
        what = f"ttt={row['ttt']}" if mode == "ttt" else mode
        record("eval_ttt", row,
               "| device | arch | mode | seq/stride | predictions | golf s | plain s | golf/plain | predictions/s "
               "| official val on 8 devices | within 600 s |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
               f"| {device} | {row['arch']} | {what} | {seq_len}/{row['stride']} | {predictions:,} | {seconds:.2f} | "
               f"{row['plain_s']:.2f} | {row['framework_over_plain']:.3f} | {row['predictions_per_s']:,} | "
               f"{official_s:,.0f} s | {'yes' if row['fits_600s'] else 'no'} |")


if __name__ == "__main__":
    main()
