"""The components of the PR #1855-#2135 stack (arch=frontier) against their formulas, and the whole preset
against an independent re-implementation of the record's forward pass (written from the formulas of its
train_gpt.py: explicit per-head loops, segment ids instead of a mask helper, the record's index lists)."""

import math
import re

import pytest
import torch
import torch.nn.functional as F
from test_arch_components import VOCAB, noisy, tiny
from test_arch_presets import compose_config, preset_model

from golf.errors import ConfigError
from golf.models.asym_softcap import AsymmetricSoftcap
from golf.models.document_mask import document_causal_mask
from golf.models.gated_smear import GatedSmear
from golf.models.layers import Rotary, rotary_inv_freq
from golf.models.rope_scaling import ScaledRotary
from golf.models.sparse_attn_gate import SparseAttnGate
from golf.optim.param_groups import split_parameters

pytestmark = pytest.mark.usefixtures("single_thread")
BOS = 1


def test_document_mask_golden():
    ids = torch.tensor([[5, BOS, 7, 8, BOS, 9]])
    allowed = document_causal_mask(ids, BOS)[0, 0].int()
    expected = torch.tensor([[1, 0, 0, 0, 0, 0],
                             [0, 1, 0, 0, 0, 0],
                             [0, 1, 1, 0, 0, 0],
                             [0, 1, 1, 1, 0, 0],
                             [0, 0, 0, 0, 1, 0],
                             [0, 0, 0, 0, 1, 1]])
    assert torch.equal(allowed, expected)


def test_document_attention_isolates_documents_exactly():
    model = noisy(tiny(doc_attention=True), 0.2).eval()
    a = torch.randint(2, VOCAB, (2, 12), generator=torch.Generator().manual_seed(0))
    b = a.clone()
    b[:, :6] = torch.randint(2, VOCAB, (2, 6), generator=torch.Generator().manual_seed(1))
    a[:, 6] = b[:, 6] = BOS
    with torch.no_grad():
        assert torch.equal(model.logits(a)[:, 6:], model.logits(b)[:, 6:])
        model.document_mask = None  # plain causal attention reads the previous document
        assert not torch.allclose(model.logits(a)[:, 6:], model.logits(b)[:, 6:])


def test_sparse_attn_gate_formula_and_init():
    gate = SparseAttnGate(num_heads=4, window=3, scale=0.5)
    assert gate.proj.zero_init and gate.proj.weight.shape == (4, 3)
    y, x = torch.randn(2, 4, 5, 8), torch.randn(2, 5, 32)
    gate.proj.weight.data.zero_()
    torch.testing.assert_close(gate(y, x), 0.5 * y)  # sigmoid(0): every head at half strength
    gate.proj.weight.data = torch.randn(4, 3)
    for h in range(4):
        g = torch.sigmoid(0.5 * (x[..., :3] @ gate.proj.weight[h]))  # [B, T]: the window only
        torch.testing.assert_close(gate(y, x)[:, h], y[:, h] * g[..., None])
    model = tiny(sparse_attn_gate=True, gate_window=3, sparse_attn_gate_scale=0.5)
    assert all((b.attn.sparse_gate.proj.weight == 0).all() for b in model.blocks)  # zeroed by the model
    assert "blocks.0.attn.sparse_gate.proj.weight" in dict(split_parameters(model)["scalar"])  # Adam


def test_gated_smear_formula_and_bos_mask():
    smear = GatedSmear(window=3, bos_id=BOS)
    assert smear.gate.zero_init and smear.lam.item() == 0.0
    smear.gate.weight.data = torch.randn(1, 3)
    smear.lam.data.fill_(0.7)
    x, ids = torch.randn(1, 5, 8), torch.tensor([[4, 6, BOS, 7, 8]])
    out = smear(x, ids)
    for t in (1, 3, 4):
        g = 0.7 * torch.sigmoid(x[0, t, :3] @ smear.gate.weight[0])
        torch.testing.assert_close(out[0, t], x[0, t] + g * x[0, t - 1])
    assert torch.equal(out[0, 0], x[0, 0]) and torch.equal(out[0, 2], x[0, 2])  # start and BOS: untouched
    smear.bos_id = -1  # without the mask the BOS takes in the previous document's last token
    assert not torch.equal(smear(x, ids)[0, 2], x[0, 2])


def test_asym_softcap_formula_starts_symmetric_and_is_frozen_in_training():
    cap = AsymmetricSoftcap(30.0)
    z = torch.linspace(-200, 200, 41)
    torch.testing.assert_close(cap(z), 30.0 * torch.tanh(z / 30.0))
    cap.pos.data.fill_(20.0)
    cap.neg.data.fill_(40.0)
    torch.testing.assert_close(cap(z), torch.where(z >= 0, 20 * torch.tanh(z / 20), 40 * torch.tanh(z / 40)))
    model = tiny(asym_softcap=True)
    assert not model.softcap.pos.requires_grad and not model.softcap.neg.requires_grad
    names = [n for group in split_parameters(model).values() for n, _ in group]
    assert "softcap.pos" not in names and "softcap.neg" not in names
    plain = tiny()
    ids = torch.randint(0, VOCAB, (2, 8))
    with torch.no_grad():
        torch.testing.assert_close(model.logits(ids), plain.logits(ids), rtol=0, atol=0)


def test_lane_mix_writes_both_outputs_into_both_lanes():
    model = noisy(tiny(num_layers=4, parallel_residual="two_lane_mix", parallel_start=2))
    mix = model.lane_mix
    assert mix.resid.shape == (4, 2) and mix.post.shape == (4, 2, 2)
    lane0, lane1, x0 = torch.randn(3, 1, 5, 32).unbind(0)
    block = model.blocks[3]
    a, m, _ = block.lane_outputs(lane0, lane1, x0)
    torch.testing.assert_close(a, block.attn_branch(block.mix(lane0, x0))[0])
    torch.testing.assert_close(m, block.mlp_branch(lane1))  # the MLP reads lane1 alone
    new0, new1 = mix(3, lane0, lane1, a, m)
    r, p = mix.resid[3], mix.post[3]
    torch.testing.assert_close(new0, r[0] * lane0 + p[0, 0] * a + p[1, 0] * m)
    torch.testing.assert_close(new1, r[1] * lane1 + p[0, 1] * a + p[1, 1] * m)
    fresh = tiny(parallel_residual="two_lane_mix", parallel_start=2).lane_mix
    assert (fresh.resid == 1.1).all() and (fresh.post == 1.0).all()


def test_virtual_skips_follow_the_looped_depth():
    looped = dict(num_layers=11, recur_layers=[3, 4, 5], recur_loops=2)
    assert tiny(**looped).skip_weights.shape[0] == 5  # physical: min(5, 6)
    assert tiny(**looped, virtual_skips=True).skip_weights.shape[0] == 8  # 17 virtual layers: min(8, 9)


def test_recurrence_switches_on_at_a_fraction_of_training():
    model = tiny(recur_layers=[1, 2], recur_start_step=10**9, recur_start_fraction=0.35)
    model.on_train_step(5000, 0.34)
    assert model.layer_order() == [0, 1, 2, 3]
    model.on_train_step(1, 0.35)  # the fraction, not the step, decides
    assert model.layer_order() == [0, 1, 2, 1, 2, 3]


def test_yarn_blends_interpolation_and_extrapolation_per_frequency():
    dim, base, train_len, seq = 16, 10000.0, 1024, 4096
    plain, yarn = Rotary(dim, base), ScaledRotary(dim, base, yarn_train_len=train_len)
    for t in (512, 1024):  # within the training length: untouched
        assert all(torch.equal(u, v) for u, v in zip(plain.tables(t, torch.device("cpu")),
                                                     yarn.tables(t, torch.device("cpu"))))
    cos, sin = yarn.tables(seq, torch.device("cpu"))
    s = seq / train_len
    theta = rotary_inv_freq(dim, base)
    expected = []
    for th in theta.tolist():
        wavelength = 2 * math.pi / th
        turns = train_len / wavelength
        if turns < 1:
            expected.append(th / s)  # slow pairs: fully interpolated
        elif turns > 32:
            expected.append(th)  # fast pairs: unchanged
        else:
            w = (turns - 1) / 31
            expected.append(w * th + (1 - w) * th / s)
    factor = 0.1 * math.log(s) + 1
    angles = torch.outer(torch.arange(seq, dtype=torch.float32), torch.tensor(expected))
    torch.testing.assert_close(cos[0, 0], factor * angles.cos())
    torch.testing.assert_close(sin[0, 0], factor * angles.sin())
    ramped = [th for th, e in zip(theta.tolist(), expected) if th / s < e < th]
    assert expected[0] == theta[0].item() and expected[-1] == theta[-1].item() / s and ramped  # all three regimes


# ---- the whole preset against the record's forward pass ------------------------------------------------

def _segments(ids: torch.Tensor) -> torch.Tensor:
    seg = torch.zeros_like(ids)
    for b in range(ids.shape[0]):
        current = 0
        for t in range(ids.shape[1]):
            current += int(ids[b, t] == BOS)
            seg[b, t] = current
    return seg


def _record_attention(blk, h, seg, rope_dims=16):
    attn = blk.attn
    bsz, t, dim = h.shape
    heads, kv_heads = attn.num_heads, attn.num_kv_heads
    hd = dim // heads
    q = (h @ attn.c_q.weight.T).view(bsz, t, heads, hd)
    k = (h @ attn.c_k.weight.T).view(bsz, t, kv_heads, hd)
    v = (h @ attn.c_v.weight.T).view(bsz, t, kv_heads, hd)
    q, k = F.rms_norm(q, (hd,)), F.rms_norm(k, (hd,))
    inv = 1.0 / 10000.0 ** (torch.arange(0, rope_dims, 2, dtype=torch.float32) / rope_dims)
    ang = torch.arange(t, dtype=torch.float32)[:, None] * inv[None]
    cos, sin = ang.cos()[None, :, None], ang.sin()[None, :, None]

    def rope(x):
        x1, x2, rest = x[..., : rope_dims // 2], x[..., rope_dims // 2 : rope_dims], x[..., rope_dims:]
        return torch.cat((x1 * cos + x2 * sin, -x1 * sin + x2 * cos, rest), dim=-1)

    q, k = rope(q) * attn.q_gain[None, None, :, None], rope(k)
    out = torch.zeros(bsz, t, heads, hd)
    for b in range(bsz):
        for i in range(t):
            keys = [j for j in range(i + 1) if seg[b, j] == seg[b, i]]
            for hh in range(heads):
                g = hh // (heads // kv_heads)
                scores = torch.stack([q[b, i, hh] @ k[b, j, g] for j in keys]) / math.sqrt(hd)
                y = (torch.softmax(scores, 0)[:, None] * v[b, keys, g]).sum(0)
                vn = F.normalize(v[b, i, g], dim=-1)
                y = y - (y @ vn) * vn  # XSA
                gate = torch.sigmoid(0.5 * (h[b, i, :12] @ attn.sparse_gate.proj.weight[hh]))
                out[b, i, hh] = gate * y
    return out.reshape(bsz, t, dim) @ attn.proj.weight.T


def _record_block_parts(blk, x, x0, seg, ln):
    mix = blk.resid_mix
    x_in = mix[0] * x + mix[1] * x0
    return x_in, blk.attn_scale * _record_attention(blk, F.rms_norm(x_in, (x.size(-1),)) * ln, seg)


def _record_mlp(blk, x, ln):
    hid = F.leaky_relu(F.rms_norm(x, (x.size(-1),)) * ln @ blk.mlp.fc.weight.T, 0.5).square()
    return blk.mlp_scale * (hid @ blk.mlp.proj.weight.T)


def _record_logits(m, ids, looping: bool):
    seg = _segments(ids)
    x = m.tok_emb.weight[ids]
    g = m.gated_smear.lam * torch.sigmoid(x[:, 1:, :12] @ m.gated_smear.gate.weight.T)
    x = torch.cat([x[:, :1], x[:, 1:] + g * x[:, :-1] * (ids[:, 1:] != BOS)[..., None]], dim=1)
    x = x0 = F.rms_norm(x, (x.size(-1),))
    order = [0, 1, 2] + [3, 4, 5] * 3 + [6, 7, 8, 9, 10] if looping else list(range(11))
    enc, dec = order[: len(order) // 2], order[len(order) // 2 :]
    skips, lane0, lane1 = [], None, None
    for i in enc:
        x_in, a = _record_block_parts(m.blocks[i], x, x0, seg, 1 / math.sqrt(i + 1))
        x = x_in + a
        x = x + _record_mlp(m.blocks[i], x, 1 / math.sqrt(i + 1))
        skips.append(x)
    for si, i in enumerate(dec):
        blk, ln = m.blocks[i], 1 / math.sqrt(i + 1)
        cur = lane0 if lane0 is not None else x
        if si < m.skip_weights.shape[0] and skips:
            s = m.skip_weights[si] * skips.pop()
            cur = torch.lerp(s, cur, torch.sigmoid(m.skip_gates[si]))
        if i >= 8:
            if lane0 is None:
                lane1 = x
            lane0 = cur
            _, a = _record_block_parts(blk, lane0, x0, seg, ln)
            mo = _record_mlp(blk, lane1, ln)
            r, p = m.lane_mix.resid[i], m.lane_mix.post[i]
            lane0, lane1 = r[0] * lane0 + p[0, 0] * a + p[1, 0] * mo, r[1] * lane1 + p[0, 1] * a + p[1, 1] * mo
        else:
            x_in, a = _record_block_parts(blk, cur, x0, seg, ln)
            x = x_in + a
            x = x + _record_mlp(blk, x, ln)
    x = F.rms_norm(0.5 * (lane0 + lane1), (x.size(-1),))
    z = x @ m.tok_emb.weight.T
    pos, neg = m.softcap.pos, m.softcap.neg
    return torch.where(z >= 0, pos * torch.tanh(z / pos), neg * torch.tanh(z / neg))


@pytest.mark.parametrize("looping", [True, False], ids=["looped", "before_the_loop"])
def test_frontier_preset_computes_the_records_forward_pass(looping):
    model, arch = preset_model("frontier")
    assert arch.recur_start_fraction == 0.35 and arch.parallel_start == 8 and arch.gate_window == 12
    model = noisy(model, 0.05).eval()
    with torch.no_grad():
        model.softcap.pos.fill_(25.0)
        model.softcap.neg.fill_(35.0)
    model.on_train_step(0, 1.0 if looping else 0.0)
    ids = torch.randint(2, arch.vocab_size, (2, 10), generator=torch.Generator().manual_seed(4))
    ids[0, 4] = ids[1, 0] = BOS
    with torch.no_grad():
        torch.testing.assert_close(model.logits(ids), _record_logits(model, ids, looping), atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("override, words", [
    ("arch.gate_window=600", "arch.gate_window=600 must be in [1, arch.model_dim=64]"),
    ("arch.attn_gate=true", "keep one"),
    ("arch.rope_ntk_train_len=1024", "pick one rotary scaling"),
    ("arch.recur_start_fraction=1.0", "arch.recur_start_fraction=1.0 must be in [0, 1)"),
])
def test_bad_frontier_options_are_clear_config_errors(override, words):
    extra = ["arch.rope_yarn_train_len=2048"] if "ntk" in override else []
    with pytest.raises(ConfigError, match=re.escape(words)):
        compose_config("arch=frontier_cpu", override, *extra)
