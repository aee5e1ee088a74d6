"""Phased TTT (PR #1610 / #1626): where the queue pauses, the global step against SGD written out with autograd,
a global step that moves nothing changes no LoRA score, and the AsymLogit caps that training leaves frozen."""

import pytest
import torch
import torch.nn.functional as F
from conftest import on_two_gloo_ranks
from test_sliding_eval import VOCAB, _ctx, _model

from golf.config.arch import ArchConfig
from golf.config.ttt import DocQueue, TTTConfig, TTTMode, TTTOptimizer
from golf.models.gpt import GPT
from golf.ttt import session
from golf.ttt.phased import phase_pauses

pytestmark = pytest.mark.usefixtures("single_thread")
BOS = 1
SEQ_LEN = 64


def _cfg(**kw) -> TTTConfig:
    return TTTConfig(**{"name": "phased", "mode": TTTMode.phased_lora, "optimizer": TTTOptimizer.adamw,
                        "lora_chunk": 32, "lora_rank": 2, "lr": 0.05, "epochs": 1, "lora_batch_docs": 2,
                        "lora_queue": DocQueue.length, "phases": 1, "phase_docs": 3, "phase_lr": 0.05,
                        "phase_epochs": 2, "chunk_tokens": 4096, "batch_seqs": 8, **kw})


def _tokens(starts=(0, 40, 100, 150, 200), n: int = 256) -> torch.Tensor:
    """Documents of 40, 60, 50, 50 and 56 predictions, each within one eval window."""
    tokens = torch.randint(2, VOCAB, (n + 1,), generator=torch.Generator().manual_seed(11))
    tokens[list(starts)] = BOS
    return tokens


def _run(cfg: TTTConfig, tokens: torch.Tensor, model=None) -> dict:
    return session.test_time_train(model or _model(), _ctx(tokens, seq_len=SEQ_LEN), cfg, 32, seed=5,
                                   diagnose=False)


def test_phases_pause_after_the_batch_holding_their_last_document():
    batches = [[5], [0, 4], [3, 1], [2, 6], [7]]
    assert phase_pauses(batches, 3, 6) == {2: [2], 3: [4], 4: [6]}  # shares of 2, 4 and 6 documents
    assert phase_pauses(batches, 2, 3) == {1: [1], 2: [3]}
    assert phase_pauses([[0, 1, 2], [3]], 2, 2) == {1: [1, 2]}  # two steps at one pause: 1, then 2 documents
    assert phase_pauses(batches, 1, 100) == {5: [8]}  # the share is at most the queue


def _doc_nll(model, tokens: torch.Tensor, start: int, end: int) -> torch.Tensor:
    x, y = tokens[None, start:end], tokens[None, start + 1 : end + 1]
    return F.cross_entropy(model.logits(x)[0], y[0], reduction="sum")


def test_the_global_step_is_sgd_over_the_scored_documents_from_first_principles():
    """LoRA at lr 0 scores with the base weights; the queue is [doc 1], [doc 3, doc 4], [doc 0, doc 2] (by length,
    longest batch first) and the one phase of 3 documents pauses after the second batch. Written out here: SGD with
    momentum 0.9, 2 epochs of one step over the three documents' tokens (each with its next BOS) concatenated in
    queue order and cut into sequences of 64, the mean loss over their targets, gradients clipped to norm 1; then
    documents 0 and 2 are scored with the new weights."""
    tokens = _tokens()
    cfg = _cfg(lr=0.0)
    out = _run(cfg, tokens)
    docs = [(0, 40), (40, 100), (100, 150), (150, 200), (200, 256)]
    model = _model()
    with torch.no_grad():
        before = sum(_doc_nll(model, tokens, *docs[d]) for d in (1, 3, 4))
    stream = torch.cat([tokens[s : e + 1] for s, e in (docs[1], docs[3], docs[4])])
    rows = [stream[a : min(a + SEQ_LEN, len(stream) - 1) + 1] for a in range(0, len(stream) - 1, SEQ_LEN)]
    params = list(model.parameters())
    sgd = torch.optim.SGD(params, lr=cfg.phase_lr, momentum=0.9)
    for _ in range(cfg.phase_epochs):
        sgd.zero_grad()
        loss = sum(F.cross_entropy(model.logits(r[None, :-1])[0], r[1:], reduction="sum") for r in rows)
        (loss / (len(stream) - 1)).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        sgd.step()
    with torch.no_grad():
        after = sum(_doc_nll(model, tokens, *docs[d]) for d in (0, 2))
    assert out["val_loss"] == pytest.approx(float(before + after) / 256, rel=1e-6)
    assert [p["documents"] for p in out["phases"]] == [3] and out["phases"][0]["tokens"] == len(stream) - 1
    frozen = _run(_cfg(lr=0.0, phase_lr=1e-12), tokens)
    assert abs(out["val_loss"] - frozen["val_loss"]) > 1e-3  # the step did move the later scores
    reads = out["checks"]["score_before_update"]["value"]
    assert out["checks"]["score_before_update"]["pass"] and reads["tokens_read"] > len(stream) - 3


def test_a_global_step_that_moves_nothing_leaves_every_lora_score_as_it_was():
    """Pausing (adapters off, base weights trainable, an optimizer built and stepped at LR 0) disturbs nothing:
    phased TTT at phase_lr 0 scores exactly as batched LoRA TTT."""
    tokens = _tokens()
    lora = _run(_cfg(mode=TTTMode.lora), tokens)
    phased = _run(_cfg(phase_lr=0.0, phases=2, phase_docs=4), tokens)
    assert phased["val_loss"] == lora["val_loss"] and len(phased["phases"]) == 2
    assert all(c["pass"] for c in phased["checks"].values()), phased["checks"]


def test_the_global_step_moves_the_asymlogit_caps_that_training_leaves_frozen():
    torch.manual_seed(0)
    model = GPT(ArchConfig(vocab_size=VOCAB, num_layers=2, model_dim=32, num_heads=2, num_kv_heads=1,
                           tied_embed_init_std=0.5, asym_softcap=True, logit_softcap=3.0))
    assert not model.softcap.pos.requires_grad  # frozen in training, as in the records
    _run(_cfg(phase_lr=0.5), _tokens(), model)
    assert model.softcap.pos.item() != 3.0 and model.softcap.neg.item() != 3.0


UNEVEN = (0, 20, 40, 150, 220)  # in val order: a batch of two short documents, then one of 110 and 70


def _phased_on_rank(rank: int) -> tuple[float, dict]:
    result = session.test_time_train(_model(), _ctx(_tokens(UNEVEN), seq_len=SEQ_LEN, rank=rank, world_size=2),
                                     _cfg(lora_queue=DocQueue.stream, phase_docs=4), 32, seed=5, diagnose=False)
    return result["val_loss"], result["checks"]


def test_two_ranks_score_like_one_and_their_ledgers_agree():
    """Rank 0 scores the short first batch, rank 1 the long second one, then both take the global step over the
    four documents (each a share of every SGD batch): the ledger's clocks are aligned first, so the reads come
    after rank 1's scores, and the numbers are one process's."""
    results = on_two_gloo_ranks(_phased_on_rank)
    alone = _run(_cfg(lora_queue=DocQueue.stream, phase_docs=4), _tokens(UNEVEN))
    for rank in (0, 1):
        val_loss, checks = results[rank]
        assert val_loss == pytest.approx(alone["val_loss"], rel=1e-6)
        assert all(c["pass"] for c in checks.values()), checks


def test_phased_ttt_is_the_headline_of_its_run():
    from golf.config.compose import compose, typed
    from golf.pipeline import headline_protocol

    cfg = typed(compose(["ttt=phased_lora", "paths.data_root=/tmp", "data.root=/tmp/demo"], hydra_runtime=True))
    assert cfg.ttt.mode == "phased_lora" and headline_protocol(cfg) == "ttt"
