"""Score a model from its artifact file alone: the entry point of the exported script.

`python -m golf.export` embeds this module and its golf imports in one self-contained script;
that script's size is `bytes_code`. It rebuilds the model from the artifact bytes and runs the
official non-overlapping evaluation with exact byte accounting, in one process; with `--stride` it runs
the exact sliding evaluation instead, and with `--ttt` the run's score-first test-time training (each
embedded only in the scripts of runs that use it, so imported by name and never counted against
runs that do not).
"""

import argparse
import importlib
import json
import sys
from pathlib import Path

import torch

from golf.data.loader import load_validation_tokens
from golf.data.tokenizer import check_vocab, load_tokenizer
from golf.errors import GolfError
from golf.eval.bpb import build_byte_tables
from golf.eval.full import evaluate_full
from golf.models.registry import load_model


def parse_args(argv):
    p = argparse.ArgumentParser(description="Rebuild a golf model from its artifact and score it (val_loss, val_bpb).")
    p.add_argument("artifact", help="the artifact file (model.golf)")
    p.add_argument("--val-pattern", required=True, help="glob of the val shards, e.g. 'data/*/fineweb_val_*.bin'")
    p.add_argument("--tokenizer", required=True, help="the SentencePiece model the shards were tokenized with")
    p.add_argument("--seq-len", type=int, required=True, help="evaluation sequence length of the run")
    p.add_argument("--stride", type=int, default=0, help="sliding eval at this stride (the run's eval.stride); 0 = off")
    p.add_argument("--ttt", type=Path, help="the run's TTT settings (ttt.json of its record): score with that "
                   "protocol, score-first, at --stride (the run's headline); only in scripts of TTT runs")
    p.add_argument("--seed", type=int, default=0, help="the run's seed (LoRA TTT initialises its adapters from it)")
    p.add_argument("--batch-seqs", type=int, default=64, help="sequences per forward pass (does not change the score)")
    p.add_argument("--max-seqs", type=int, default=0, help="score only the first N sequences (0 = the whole split)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16 = the baseline's storage dtypes and bf16 autocast, as in a bf16 training run")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p.parse_args(argv)


def score(args) -> dict:
    device = torch.device(args.device)
    autocast_dtype = torch.bfloat16 if args.precision == "bf16" else None
    model = load_model(Path(args.artifact), device, autocast_dtype)
    vocab_size = model.tok_emb.num_embeddings
    sp = load_tokenizer(args.tokenizer)
    check_vocab(sp, vocab_size, args.tokenizer)
    tables = build_byte_tables(sp, vocab_size).to(device)
    val_tokens = load_validation_tokens(args.val_pattern, args.seq_len)
    if args.ttt:
        try:
            session = importlib.import_module("golf.ttt.session")
        except ImportError as exc:
            raise GolfError("this script was exported for a run without test-time training; drop --ttt") from exc
        return session.score_with_settings(model.to(device), val_tokens, tables, args.seq_len, int(sp.bos_id()),
                                           json.loads(args.ttt.read_text()), args.seed, args.stride or args.seq_len,
                                           args.max_seqs, args.batch_seqs, device, autocast_dtype)
    if args.stride:
        try:
            sliding = importlib.import_module("golf.eval.sliding")
        except ImportError as exc:
            raise GolfError("this script was exported for a run without sliding eval; drop --stride") from exc
        return sliding.evaluate_sliding(model.to(device), val_tokens, tables, args.seq_len, args.stride,
                                        args.batch_seqs, 0, 1, device, autocast_dtype, args.max_seqs)
    return evaluate_full(model.to(device), val_tokens, tables, args.seq_len, args.batch_seqs, 0, 1, device,
                         autocast_dtype, args.max_seqs)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = score(args)
    except GolfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"val_loss {result['val_loss']:.8f} val_bpb {result['val_bpb']:.8f} "
          f"tokens {result['tokens']} bytes {result['bytes']}")
    if "checks" in result:
        print("score-first checks: " + ", ".join(f"{k} {'pass' if v['pass'] else 'FAIL'}"
                                                for k, v in result["checks"].items()))
        return 0 if result["compliant"] else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
