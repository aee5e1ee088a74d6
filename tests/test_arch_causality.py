"""Causality of every component and every preset (reduced width): a token never changes the logits of
earlier positions; and SmearGate / BigramHash never carry anything across a BOS (document boundary)."""

import pytest
import torch
from test_arch_components import VOCAB, noisy, tiny
from test_arch_presets import PRESETS, preset_model

from golf.models.bigram_hash import BigramHash
from golf.models.smear_gate import SmearGate

pytestmark = pytest.mark.usefixtures("single_thread")

BOS = 1
COMPONENTS = {
    "leaky_relu2": dict(mlp="leaky_relu2"),
    "star_relu": dict(mlp="star_relu", mlp_hidden=48),
    "swiglu": dict(mlp="swiglu"),
    "partial_rope_ntk": dict(rope_dims=4, rope_ntk_train_len=8),
    "xsa": dict(xsa_layers=[0, 1, 2, 3]),
    "attn_gate": dict(attn_gate=True),
    "value_embed": dict(value_embed_dim=8, value_embed_layers=[2, 3]),
    "value_residual": dict(value_residual=True),
    "bigram_mult": dict(bigram_buckets=97, bigram_dim=8),
    "bigram_xor": dict(bigram_buckets=97, bigram_dim=8, bigram_hash="xor", bigram_scale_init=0.05),
    "smear": dict(smear=True),
    "skip_gates": dict(skip_gates=True),
    "ln_scale": dict(ln_scale=True),
    "recurrence": dict(recur_layers=[1, 2]),
    "two_lane": dict(parallel_residual="two_lane", parallel_start=2),
    "gptj": dict(parallel_residual="gptj", parallel_start=1),
    "ebls": dict(ebls_blocks=2),
    "doc_attention": dict(doc_attention=True),
    "sparse_attn_gate": dict(sparse_attn_gate=True, gate_window=5),
    "gated_smear": dict(gated_smear=True, gate_window=5),
    "asym_softcap": dict(asym_softcap=True),
    "partial_rope_yarn": dict(rope_dims=4, rope_yarn_train_len=8),
    "two_lane_mix": dict(parallel_residual="two_lane_mix", parallel_start=2),
    "virtual_skips": dict(recur_layers=[1, 2], recur_loops=2, virtual_skips=True),
}


def _assert_causal(model: torch.nn.Module, vocab: int, seq: int = 16) -> None:
    model.eval()
    tokens = torch.randint(2, vocab, (2, seq), generator=torch.Generator().manual_seed(3))
    for t in (0, 5, seq - 1):
        changed = tokens.clone()
        changed[:, t] = (changed[:, t] + 7) % (vocab - 2) + 2
        with torch.no_grad():
            before, after = model.logits(tokens), model.logits(changed)
        assert torch.equal(before[:, :t], after[:, :t]), f"position < {t} saw token {t}"
        assert not torch.equal(before[:, t], after[:, t])  # the change is visible, so the test can fail


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_every_component_is_causal(name):
    _assert_causal(noisy(tiny(**COMPONENTS[name])), VOCAB)


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_is_causal(name):
    model, arch = preset_model(name)
    _assert_causal(noisy(model, 0.05), arch.vocab_size)


def _documents(prefix_seed: int, boundary: int = 6, seq: int = 12) -> torch.Tensor:
    """Token ids with a BOS at `boundary`; the tokens before it depend on `prefix_seed`, the rest do not."""
    ids = torch.randint(2, VOCAB, (2, seq), generator=torch.Generator().manual_seed(0))
    ids[:, :boundary] = torch.randint(2, VOCAB, (2, boundary), generator=torch.Generator().manual_seed(prefix_seed))
    ids[:, boundary] = BOS
    return ids


def test_smear_gate_takes_nothing_across_a_bos():
    smear = noisy(SmearGate(8, bos_id=BOS), 1.0)
    a, b = _documents(1), _documents(2)
    xa, xb = torch.randn(2, 12, 8), torch.randn(2, 12, 8)
    xb[:, 6:] = xa[:, 6:]  # same second document, different first one
    assert torch.equal(smear(xa, a)[:, 6:], smear(xb, b)[:, 6:])
    # Without the fix (no token counts as BOS) position 6 blends in position 5 of the other document.
    smear.bos_id = -1
    assert not torch.equal(smear(xa, a)[:, 6], smear(xb, b)[:, 6])


@pytest.mark.parametrize("kind", ["mult", "xor"])
def test_bigram_hash_takes_nothing_across_a_bos(kind):
    bigram = noisy(BigramHash(97, 8, 16, kind, 0.01, 0.05, bos_id=BOS), 1.0)
    a, b = _documents(1), _documents(2)
    assert torch.equal(bigram(a)[:, 6:], bigram(b)[:, 6:])
    bigram.bos_id = -1
    assert not torch.equal(bigram(a)[:, 6], bigram(b)[:, 6])


@pytest.mark.parametrize("name", [p for p in PRESETS if p != "baseline"])
def test_preset_embedding_stream_starts_fresh_at_a_bos(name):
    """x0 (token embedding + BigramHash + gated SmearGate -> RMSNorm -> SmearGate) after a BOS ignores the
    previous document; attention reads across documents unless arch.doc_attention (frontier) keeps it inside."""
    model, arch = preset_model(name)
    model = noisy(model, 0.05).eval()
    a, b = _documents(1), _documents(2)
    with torch.no_grad():
        assert torch.equal(model.embed(a)[:, 6:], model.embed(b)[:, 6:])
        assert torch.equal(model.logits(a)[:, 7:], model.logits(b)[:, 7:]) == arch.doc_attention
        for module in (model.smear, model.bigram, model.gated_smear):
            if module is not None:
                module.bos_id = -1
        assert not torch.equal(model.embed(a)[:, 6], model.embed(b)[:, 6])
