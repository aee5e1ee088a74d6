"""BPB on a transformed dataset (CaseOps) charges the bytes of the ORIGINAL text: every scorer (non-overlapping,
sliding, batched LoRA TTT) takes its byte counts from the val stream's byte sidecar, so the bytes of a fully
scored val split are exactly the UTF-8 length of the original documents, and a run, its rescoring and its
record script load the sidecar from `data.val_bytes_pattern`."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import sentencepiece as spm
import torch
from conftest import FAST_RUN, run_golf

from golf.config.schema import ArchConfig, DocQueue, TTTConfig, TTTMode, TTTOptimizer
from golf.data.build import build_dataset
from golf.data.demo import demo_corpus
from golf.data.shards import find_shards, load_shard
from golf.eval.bpb import build_byte_tables
from golf.eval.context import EvalContext
from golf.eval.full import evaluate_full
from golf.eval.sliding import evaluate_sliding
from golf.eval.val_stream import ValStream
from golf.models.gpt import GPT
from golf.ttt import session

pytestmark = pytest.mark.usefixtures("single_thread")
VOCAB, BOS = 512, 1


@pytest.fixture(scope="module")
def caseops(tmp_path_factory):
    """Six demo documents as CaseOps val (and train for the run below): the original texts and the build."""
    documents, _ = demo_corpus()
    val, train = documents[30:36], documents[46:160]
    root = tmp_path_factory.mktemp("caseops") / "ds"
    build_dataset(val + train, root, VOCAB, len(val), name="demo", transform="caseops")
    return val, root


def _stream(root):
    def cat(pattern):
        return torch.from_numpy(np.concatenate([load_shard(p) for p in find_shards(str(root / pattern))]))

    return cat("demo_val_[0-9]*.bin").to(torch.int32), cat("demo_val_bytes_*.bin").to(torch.int32)


def _model() -> GPT:
    torch.manual_seed(0)
    return GPT(ArchConfig(vocab_size=VOCAB, num_layers=2, model_dim=32, num_heads=2, num_kv_heads=1,
                          tied_embed_init_std=0.5))


def _ctx(root, tokens, token_bytes, seq_len=64):
    sp = spm.SentencePieceProcessor(model_file=str(root / "tokenizer.model"))
    return EvalContext(ValStream(tokens, bos_id=BOS, token_bytes=token_bytes), build_byte_tables(sp, VOCAB), seq_len,
                       BOS, batch_seqs=16)


def _lora(model, ctx) -> dict:
    cfg = TTTConfig(name="lora", mode=TTTMode.lora, optimizer=TTTOptimizer.adamw, lora_chunk=64, lora_rank=2,
                    lr=0.01, epochs=1, lora_batch_docs=3, lora_queue=DocQueue.length)
    return session.test_time_train(model, ctx.with_ledger(), cfg, 32, seed=5, diagnose=False)


def test_every_scorer_charges_the_original_utf8_bytes(caseops):
    val, root = caseops
    tokens, token_bytes = _stream(root)
    original = sum(len(text.encode("utf-8")) for text in val)
    model = _model()
    with_sidecar, tables_only = _ctx(root, tokens, token_bytes), _ctx(root, tokens, None)

    # Sliding windows and per-document LoRA TTT score every target of the stream: all six documents.
    slid = evaluate_sliding(model, with_sidecar, stride=16)
    lora = _lora(model, with_sidecar)
    for result in (slid, lora):
        assert result["tokens"] == tokens.numel() - 1 and result["bytes"] == original
        assert result["val_bpb"] == pytest.approx(result["val_loss"] / math.log(2) * result["tokens"] / original,
                                                  rel=1e-12)
    # The tokenizer's tables count the transformed text: case operators are 3-byte private-use characters.
    assert evaluate_sliding(model, tables_only, stride=16)["bytes"] > original

    # The non-overlapping eval scores whole sequences only: the sidecar's bytes of exactly those targets.
    full = evaluate_full(model, with_sidecar)
    scored = (tokens.numel() - 1) // 64 * 64
    assert full["tokens"] == scored and full["bytes"] == int(token_bytes[1 : scored + 1].sum())
    assert full["val_loss"] == evaluate_full(model, tables_only)["val_loss"]  # bytes change, never the NLL


def test_a_run_and_its_record_script_score_on_the_sidecar(caseops, tmp_path, demo_cache):
    """A run on CaseOps data reports the original bytes of what it scored, and its train_gpt.py carries the
    sidecar's path, so a reviewer's re-run charges the same bytes."""
    _, root = caseops
    data = [f"data.root={root}", f"data.tokenizer_path={root}/tokenizer.model", f"data.vocab_size={VOCAB}",
            f"data.train_pattern={root}/demo_train_*.bin", f"data.val_pattern='{root}/demo_val_[0-9]*.bin'",
            f"data.val_bytes_pattern={root}/demo_val_bytes_*.bin", "data.name=caseops_demo"]
    proc = run_golf([*FAST_RUN, "eval.max_seqs=8", *data], tmp_path, demo_cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [results_path] = tmp_path.rglob("results.json")
    metrics = json.loads(results_path.read_text())["metrics"]
    _, token_bytes = _stream(root)
    assert metrics["val_tokens"] == 8 * 64 and metrics["val_bytes"] == int(token_bytes[1 : 8 * 64 + 1].sum())

    # The reviewer's path: the record script alone, data from DATA_PATH, scoring the run's artifact.
    job = results_path.parent
    (tmp_path / "review").mkdir()
    (tmp_path / "review" / "train_gpt.py").write_bytes((job / "train_gpt.py").read_bytes())
    env = {**os.environ, "DATA_PATH": str(root), "SCORE_ARTIFACT": str(job / "artifact" / "model.golf"),
           "PYTHONPATH": ""}
    review = subprocess.run([sys.executable, "train_gpt.py"], cwd=tmp_path / "review", env=env, capture_output=True,
                            text=True, timeout=300)
    assert review.returncode == 0, review.stderr[-2000:]
    assert f"final val_bpb:{metrics['val_bpb']:.8f}" in review.stdout + review.stderr
