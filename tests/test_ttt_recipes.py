"""The TTT protocols as the seeds ran them: PR #484's EB-adaptive scales and freeze list, the pre-quant cosine
of PRs #462 / #1550 (PyTorch's own CosineAnnealingLR is the reference), `ttt.qat` applied the same way whatever
state training left, PR #549's legal cosine over C - 1 chunks, and LoRA's optimizer key."""

import math
from dataclasses import replace

import pytest
import torch
from test_arch_presets import compose_config
from test_sliding_eval import VOCAB, _ctx, _model
from test_ttt_legality import _tokens

from golf.config.arch import ArchConfig
from golf.config.quant import QuantConfig, QuantScheme
from golf.config.schema import GolfConfig
from golf.config.ttt import SNRScale, TTTConfig, TTTMode, TTTOptimizer
from golf.models.gpt import GPT
from golf.quant.qat import LateQAT
from golf.ttt.lora import run_lora_ttt
from golf.ttt.prequant import run_prequant_ttt
from golf.ttt.stream import run_stream_ttt
from golf.ttt.training import select_trainable

pytestmark = pytest.mark.usefixtures("single_thread")


def _eb_adaptive(**kw) -> TTTConfig:
    return replace(compose_config("ttt=eb_adaptive").ttt, chunk_tokens=128, batch_seqs=4, **kw)


def test_eb_adaptive_scales_each_layer_by_its_own_mean_abs_snr():
    """A4: the preset uses mean|g|/std(g), so the per-layer scales differ (and clear the 0.3 floor); the
    |E[g]|/std(g) of PR #484's text puts every layer at the floor, a uniform 0.3x SGD."""
    code = run_stream_ttt(_model(), _ctx(_tokens(), ledger=True), _eb_adaptive(), 32)["snr"]
    assert code["estimator"] == "eb_abs" and code["applied"]
    scales = list(code["mean"]["eb_abs_clipped"].values())
    assert len(scales) == 3 and min(scales) > 0.45 and max(scales) - min(scales) > 0.05, code["mean"]["eb_abs_clipped"]
    text = run_stream_ttt(_model(), _ctx(_tokens(), ledger=True), _eb_adaptive(snr_scale=SNRScale.eb), 32)["snr"]
    assert list(text["mean"]["eb_clipped"].values()) == pytest.approx([0.3] * 3)


def test_freeze_embeddings_is_pr484s_list_tok_emb_bigram_lm_head():
    """A4: PR #484 froze every parameter whose name contains tok_emb, bigram or lm_head (that rule, by name, is
    the reference here); golf freezes by role, and value embeddings stay trainable, as there."""
    torch.manual_seed(0)
    model = GPT(ArchConfig(vocab_size=VOCAB, num_layers=2, model_dim=32, num_heads=2, num_kv_heads=1,
                           tie_embeddings=False, bigram_buckets=16, bigram_dim=8, bigram_scale_init=0.05, smear=True,
                           value_embed_dim=8, value_embed_layers=[1]))
    select_trainable(model, _eb_adaptive())
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    published = {name for name, _ in model.named_parameters() if any(k in name for k in ("tok_emb", "bigram",
                                                                                          "lm_head"))}
    assert frozen == published == {"tok_emb.weight", "lm_head.weight", "bigram.table.weight", "bigram.proj.weight",
                                   "bigram.scale"}


def _prequant_config(**ttt) -> GolfConfig:
    quant = QuantConfig(scheme=QuantScheme.intn, keep_float_max_numel=64, qat_threshold=0.15)
    t = replace(compose_config("ttt=prequant_adamw").ttt, batch_seqs=4, **ttt)
    return GolfConfig(arch=ArchConfig(vocab_size=VOCAB, num_layers=2, model_dim=32, num_heads=2, num_kv_heads=1),
                      quant=quant, ttt=t)


def _prequant(model, cfg: GolfConfig, lrs: list | None = None) -> float:
    def log(_epoch, metrics):
        if lrs is not None:
            lrs.append(metrics["ttt/lr"])

    tokens = _tokens(2 * 64 + 1)
    return run_prequant_ttt(model, _ctx(tokens, ledger=True), cfg, 64, on_chunk=log)["val_bpb"]


def test_prequant_cosine_is_cosine_annealing_per_epoch_down_to_a_tenth():
    """B1: PRs #462 / #1550 step CosineAnnealingLR(T_max=epochs, eta_min=0.1 lr) once per epoch."""
    cfg = _prequant_config(epochs=6)
    lrs = []
    _prequant(_model(), cfg, lrs)
    reference_opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.ttt.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(reference_opt, T_max=6, eta_min=0.1 * cfg.ttt.lr)
    reference = []
    for _ in range(6):
        reference.append(reference_opt.param_groups[0]["lr"])
        reference_opt.step()
        schedule.step()
    assert lrs == pytest.approx(reference, rel=1e-9)
    assert min(lrs) > 0.1 * cfg.ttt.lr  # the last epoch still trains


def test_ttt_qat_decides_the_forward_whatever_late_qat_left_on_the_model():
    """B3: in the training job the trained model may still carry late QAT; `python -m golf.ttt` rebuilds it
    without. ttt.qat sets the same state on both, so the two entry points give one number."""
    cfg = _prequant_config(epochs=2)
    trained = _model()
    LateQAT(trained, cfg.quant).update(step=100, lr_mul=0.0)  # what training left on
    assert any(getattr(m, "qat_bits", 0) for m in trained.modules())
    rebuilt = _model()
    assert not any(getattr(m, "qat_bits", 0) for m in rebuilt.modules())
    off = [_prequant(m, cfg) for m in (trained, rebuilt)]
    qat = replace(cfg, ttt=replace(cfg.ttt, qat=True))
    on = [_prequant(m, qat) for m in (trained, rebuilt)]
    assert off[0] == off[1] and on[0] == on[1] and off[0] != on[0]


def test_legal_ttt_cosine_reaches_zero_only_after_the_last_chunk():
    """C3: PR #549 trains chunk c of C at lr 0.5 (1 + cos(pi c / (C - 1))); the last chunk is never trained."""
    lrs = []
    cfg = replace(_eb_adaptive(), snr_scale=SNRScale.none, lr=0.01)
    out = run_stream_ttt(_model(), _ctx(_tokens(), ledger=True), cfg, 32,
                         on_chunk=lambda i, m: lrs.append(m.get("ttt/lr")))
    chunks = out["chunks"]
    assert chunks == 4 and lrs[-1] is None
    assert lrs[:-1] == pytest.approx([0.01 * 0.5 * (1 + math.cos(math.pi * c / (chunks - 1))) for c in range(3)])


def test_lora_honours_the_optimizer_key():
    """C4: ttt.optimizer picks LoRA's optimizer (adamw with decay 0 is PR #77's Adam)."""
    def score(optimizer: TTTOptimizer) -> float:
        cfg = TTTConfig(name="lora", mode=TTTMode.lora, optimizer=optimizer, lr=0.05, epochs=1, lora_rank=2,
                        lora_chunk=32, lora_targets=r"attn\.c_q$")
        return run_lora_ttt(_model(), _ctx(_tokens(), ledger=True), cfg, seed=0)["val_bpb"]

    assert score(TTTOptimizer.adamw) != score(TTTOptimizer.sgd)
