"""The architecture components of golf.models, one at a time: formulas, shapes and init behaviour."""

import math

import pytest
import torch
import torch.nn.functional as F

from golf.config.arch import ArchConfig, BigramHashKind, MLPKind, ParallelResidual
from golf.config.schema import GolfConfig
from golf.config.validate import validate
from golf.errors import ConfigError
from golf.models.attention import CausalSelfAttention
from golf.models.attn_gate import AttnGate
from golf.models.bigram_hash import BigramHash, bigram_buckets
from golf.models.gpt import GPT
from golf.models.layers import Rotary, apply_rotary, rotary_inv_freq
from golf.models.mlp import ReluSquaredMLP
from golf.models.recurrence import layer_order
from golf.models.roles import parameter_roles
from golf.models.rope_scaling import ScaledRotary
from golf.models.smear_gate import SmearGate
from golf.models.stack_attention import StackAttention
from golf.models.star_relu import StarReluMLP
from golf.models.swiglu import SwiGLUMLP
from golf.models.xsa import exclude_self_value
from golf.optim.param_groups import split_parameters

pytestmark = pytest.mark.usefixtures("single_thread")

VOCAB = 64


def tiny(seed: int = 0, **options) -> GPT:
    """A 4-layer, 32-wide GPT with the given options (GPT keyword arguments = arch fields)."""
    torch.manual_seed(seed)
    return GPT(ArchConfig(vocab_size=VOCAB, num_layers=options.pop("num_layers", 4), model_dim=32, num_heads=4,
                          num_kv_heads=options.pop("num_kv_heads", 2), tied_embed_init_std=0.5, **options))


def noisy(model: torch.nn.Module, scale: float = 0.1) -> torch.nn.Module:
    """Zero-initialized projections hide whole paths at init; noise makes every path visible."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)
    return model


def _randomize(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p))


# ---- MLP variants ----------------------------------------------------------------------------------------

def test_mlp_formulas_relu2_leaky_star_relu_and_swiglu():
    x = torch.randn(2, 5, 16)
    relu2, leaky = ReluSquaredMLP(16, 24), ReluSquaredMLP(16, 24, negative_slope=0.5)
    star, swiglu = StarReluMLP(16, 24), SwiGLUMLP(16, 24)
    for m in (relu2, leaky, star, swiglu):
        assert m.proj.zero_init  # the model zeroes it: a fresh MLP adds nothing
        _randomize(m)
    torch.testing.assert_close(relu2(x), F.relu(x @ relu2.fc.weight.T).square() @ relu2.proj.weight.T)
    h = x @ leaky.fc.weight.T
    torch.testing.assert_close(leaky(x), torch.where(h > 0, h, 0.5 * h).square() @ leaky.proj.weight.T)
    # PR #462's "SwiGLU" is Star-ReLU with per-unit vectors: down(scale * relu(up x)^2 + bias).
    star_ref = (star.scale * F.relu(x @ star.fc.weight.T).square() + star.bias) @ star.proj.weight.T
    torch.testing.assert_close(star(x), star_ref)
    # The true SwiGLU: down(silu(gate x) * up x).
    swiglu_ref = (F.silu(x @ swiglu.gate.weight.T) * (x @ swiglu.fc.weight.T)) @ swiglu.proj.weight.T
    torch.testing.assert_close(swiglu(x), swiglu_ref)
    assert not torch.allclose(star(x), swiglu(x))
    # 2 matrices + 2 vectors vs 3 matrices.
    assert sum(p.numel() for p in star.parameters()) == 2 * 16 * 24 + 2 * 24
    assert sum(p.numel() for p in swiglu.parameters()) == 3 * 16 * 24


def test_mlp_hidden_size_explicit_or_multiple_of_width():
    assert tiny().blocks[0].mlp.fc.weight.shape == (2 * 32, 32)
    for kind in ("relu2", "leaky_relu2", "star_relu", "swiglu"):
        assert (tiny(mlp=kind).blocks[1].mlp.proj.weight == 0).all()
    model = tiny(mlp="star_relu", mlp_hidden=56)
    assert model.blocks[0].mlp.fc.weight.shape == (56, 32) and model.blocks[0].mlp.scale.shape == (56,)
    assert isinstance(tiny(mlp="swiglu").blocks[0].mlp, SwiGLUMLP)
    assert tiny(mlp="leaky_relu2", mlp_leaky_slope=0.25).blocks[0].mlp.negative_slope == 0.25


# ---- attention -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kv_heads", [1, 2, 4])
def test_gqa_any_kv_head_count(kv_heads):
    attn = CausalSelfAttention(32, 4, kv_heads, 10000.0, 1.5)
    assert attn.c_k.weight.shape == (kv_heads * 8, 32) and attn.c_v.weight.shape == (kv_heads * 8, 32)
    x = torch.randn(2, 6, 32)
    y, v = attn.attend(*attn.queries_keys(x), attn.c_v(x))
    assert attn(x).shape == (2, 6, 32) and y.shape == (2, 4, 6, 8) and v.shape == (2, kv_heads, 6, 8)


def test_xsa_output_is_orthogonal_to_the_tokens_own_value_gqa_form():
    g = torch.Generator().manual_seed(0)
    y, v = torch.randn(2, 8, 5, 16, generator=g), torch.randn(2, 2, 5, 16, generator=g)
    out = exclude_self_value(y, v)
    unit = F.normalize(v, dim=-1)
    for h in range(8):
        own = h // 4  # head h reads KV head h // (H / Hkv)
        assert (out[:, h] * unit[:, own]).sum(-1).abs().max() < 1e-5
        assert (out[:, h] * unit[:, 1 - own]).sum(-1).abs().max() > 1e-2  # another group's value: untouched
        # Only the component along the own value is removed.
        removed = y[:, h] - out[:, h]
        torch.testing.assert_close(removed, (y[:, h] * unit[:, own]).sum(-1, keepdim=True) * unit[:, own])


def test_partial_rope_leaves_the_non_rotated_dims_untouched():
    x = torch.randn(2, 4, 7, 16)
    rotary = Rotary(4)
    cos, sin = rotary(7, x.device, x.dtype)
    out = apply_rotary(x, cos, sin, rope_dims=4)
    assert torch.equal(out[..., 4:], x[..., 4:])
    torch.testing.assert_close(out[..., :4], apply_rotary(x[..., :4], cos, sin))
    assert not torch.allclose(out[..., :4], x[..., :4])
    assert torch.equal(out[:, :, 0], x[:, :, 0])  # position 0 is not rotated at all
    # The rotary table covers the rotated dims only: inv_freq_i = base^(-2i/rope_dims).
    attn = CausalSelfAttention(32, 2, 1, 10000.0, 1.5, rope_dims=4)
    torch.testing.assert_close(attn.rotary.inv_freq, torch.tensor([1.0, 10000.0 ** -0.5]))


def test_ntk_base_scaling_only_beyond_the_training_length():
    plain, ntk = Rotary(16, 10000.0), ScaledRotary(16, 10000.0, ntk_train_len=8)
    for t in (4, 8):
        assert all(torch.equal(a, b) for a, b in zip(plain(t, torch.device("cpu"), torch.float32),
                                                     ntk(t, torch.device("cpu"), torch.float32)))
    cos, _ = ntk(16, torch.device("cpu"), torch.float32)
    scaled = rotary_inv_freq(16, 10000.0 * 2.0 ** (16 / 14))  # 10,000 * (16/8)^(rd/(rd-2))
    torch.testing.assert_close(cos[0, 0], torch.outer(torch.arange(16.0), scaled).cos())


def test_qk_gain_init_and_attention_gate():
    torch.manual_seed(0)
    plain = CausalSelfAttention(32, 4, 2, 10000.0, 5.25)
    assert torch.equal(plain.q_gain, torch.full((4,), 5.25))
    gated = StackAttention(32, 4, 2, 10000.0, 5.25, gate=True)
    gated.load_state_dict(plain.state_dict(), strict=False)
    gated.attn_gate.weight.data.zero_()  # as the model's zero_init pass leaves it
    x = torch.randn(2, 6, 32)
    # Zero gate weight, bias 4: every head's output is scaled by sigmoid(4) ~ 0.982.
    torch.testing.assert_close(gated(x)[0], plain(x) * torch.sigmoid(torch.tensor(4.0)))
    assert AttnGate.PARAM_ROLES["weight"].control


def test_value_embedding_and_value_residual_enter_the_values():
    torch.manual_seed(0)
    attn = StackAttention(32, 4, 2, 10000.0, 1.5, value_embed=True, value_residual=True)
    x, ve, v0 = torch.randn(1, 5, 32), torch.randn(1, 5, 16), torch.randn(1, 5, 16)
    attn.ve_layer_scale.data.fill_(0.5)
    _, raw_v = attn(x, ve, v0)
    torch.testing.assert_close(raw_v, attn.c_v(x) + 0.5 * ve)  # raw values: after VE, before the blend
    _randomize(attn.proj)
    attn.vrl_lambda.data = torch.tensor([1.0, 0.0])  # pure v0: the output no longer depends on c_v
    before = attn(x, ve, v0)[0]
    attn.c_v.weight.data.add_(1.0)
    torch.testing.assert_close(attn(x, ve, v0)[0], before)
    model = tiny(value_embed_dim=8, value_embed_layers=[2, 3], value_residual=True)
    assert [b.attn.ve_layer_scale is not None for b in model.blocks] == [False, False, True, True]
    assert [b.attn.vrl_lambda is not None for b in model.blocks] == [False, True, True, True]
    assert model.value_embed.table.weight.shape == (VOCAB, 8) and model.value_embed.proj.weight.shape == (16, 8)
    assert model.value_embed.scale.item() == pytest.approx(0.1) and (model.value_embed.proj.weight == 0).all()


def test_xsa_on_chosen_layers_only():
    assert [b.attn.xsa is not None for b in tiny(xsa_layers=[1, 3]).blocks] == [False, True, False, True]


# ---- embeddings ------------------------------------------------------------------------------------------

def test_bigram_hash_buckets_mult_and_xor_with_document_starts():
    bos = 1
    ids = torch.tensor([[5, 7, 1, 9, 9]])
    mult = bigram_buckets(ids, 8192, "mult", bos)
    # prev * 1009 + cur mod K; position 0 and the BOS at 2 hash with prev = 0.
    assert mult.tolist() == [[5, (5 * 1009 + 7) % 8192, 1, (1 * 1009 + 9) % 8192, (9 * 1009 + 9) % 8192]]
    xor = bigram_buckets(ids, 3072, "xor", bos)
    k = 3071
    assert xor.tolist() == [[k, (36313 * 7 ^ 27191 * 5) % k, k, (36313 * 9 ^ 27191 * 1) % k,
                             (36313 * 9 ^ 27191 * 9) % k]]
    assert int(xor.max()) <= k and int(mult.max()) < 8192


def test_bigram_hash_tables_init_and_scale():
    s462 = BigramHash(512, 16, 32, "mult", init_std=0.01, scale_init=0.0, bos_id=1)
    assert s462.table.weight.shape == (512, 16) and s462.proj.weight.shape == (32, 16) and s462.scale is None
    assert s462.table.weight.std().item() == pytest.approx(0.01, rel=0.1)
    ids = torch.randint(0, VOCAB, (2, 9))
    assert (s462(ids) == 0).all()  # the projection starts at zero: nothing added at init
    merged = BigramHash(512, 16, 32, "xor", init_std=0.0, scale_init=0.05, bos_id=1)
    assert (merged.table.weight == 0).all() and merged.scale.item() == pytest.approx(0.05)
    _randomize(merged)
    merged.scale.data.fill_(0.5)
    torch.testing.assert_close(merged(ids), 0.5 * merged.proj(merged.table(bigram_buckets(ids, 512, "xor", 1))))


def test_smear_gate_formula_and_bos_fix():
    smear = SmearGate(8, bos_id=1)
    smear.gate.data = torch.linspace(-2, 2, 8)
    x = torch.randn(1, 5, 8)
    ids = torch.tensor([[4, 6, 1, 7, 8]])
    g = torch.sigmoid(smear.gate)
    out = smear(x, ids)
    torch.testing.assert_close(out[0, 1], (1 - g) * x[0, 1] + g * x[0, 0])
    torch.testing.assert_close(out[0, 3], (1 - g) * x[0, 3] + g * x[0, 2])
    # Position 0 and the BOS at 2 start a document: they blend with 0, never with the previous token.
    torch.testing.assert_close(out[0, 0], (1 - g) * x[0, 0])
    torch.testing.assert_close(out[0, 2], (1 - g) * x[0, 2])


def test_ebls_embedding_smears_before_the_norm_keeping_95_percent_and_hashes_with_104729():
    """PR #484's first commit: x = rms(keep x_t + (1 - keep) x_{t-1}) over tok_emb + bigram, keep = sigmoid(3)
    at init; bucket = (prev * 104729 + cur) mod K. Written out here from that commit's formulas."""
    model = tiny(bigram_buckets=97, bigram_dim=8, bigram_mult=104729, smear=True, smear_pre_norm=True,
                 smear_init_logit=-3.0)
    _randomize(model.bigram)
    ids = torch.tensor([[5, 1, 60, 7, 7, 33]])
    prev = F.pad(ids[:, :-1], (1, 0))
    buckets = (prev.masked_fill((ids == 1) | (torch.arange(6) == 0), 0) * 104729 + ids) % 97
    assert torch.equal(bigram_buckets(ids, 97, "mult", 1, 104729), buckets)
    raw = model.tok_emb(ids) + model.bigram.proj(model.bigram.table(buckets))
    keep = torch.sigmoid(torch.tensor(3.0))
    assert torch.sigmoid(model.smear.gate).tolist() == pytest.approx([1 - keep.item()] * 32, rel=1e-5)
    shifted = F.pad(raw[:, :-1], (0, 0, 1, 0))
    shifted[:, 1] = 0  # arch.bos_mask (on): the BOS at position 1 takes nothing from position 0
    expected = F.rms_norm(keep * raw + (1 - keep) * shifted, (32,))
    torch.testing.assert_close(model.embed(ids), expected, atol=1e-6, rtol=1e-5)
    after = tiny(bigram_buckets=97, bigram_dim=8, bigram_mult=104729, smear=True, smear_init_logit=-3.0)
    after.load_state_dict(model.state_dict())
    assert not torch.allclose(after.embed(ids), model.embed(ids))  # the placement matters


def test_bos_mask_off_lets_smear_and_bigram_read_across_a_document_start_as_the_seeds_did():
    ids = torch.tensor([[5, 9, 1, 7]])
    assert bigram_buckets(ids, 8192, "mult", None).tolist() == [[5, (5 * 1009 + 9) % 8192, (9 * 1009 + 1) % 8192,
                                                                 (1 * 1009 + 7) % 8192]]
    assert bigram_buckets(ids, 3072, "xor", None)[0, 2].item() == (36313 * 1 ^ 27191 * 9) % 3071
    masked, seeds = (tiny(smear=True, bigram_buckets=97, bigram_dim=8, bos_mask=flag) for flag in (True, False))
    _randomize(masked)
    seeds.load_state_dict(masked.state_dict())
    other = ids.clone()
    other[0, 1] = 11  # the token before the BOS
    for model, reads_across in ((masked, False), (seeds, True)):
        with torch.no_grad():
            moved = not torch.equal(model.embed(ids)[0, 2], model.embed(other)[0, 2])
        assert moved == reads_across


# ---- residual structure ----------------------------------------------------------------------------------

def test_gated_unet_skips_start_as_an_even_blend():
    model = tiny(skip_gates=True)
    assert model.skip_gates.shape == model.skip_weights.shape == (2, 32) and (model.skip_gates == 0).all()
    x, s = torch.randn(1, 3, 32), torch.randn(1, 3, 32)
    model.skip_weights.data.fill_(2.0)
    torch.testing.assert_close(model.merge_skip(0, x, s), 0.5 * x + 0.5 * 2.0 * s)
    torch.testing.assert_close(tiny().merge_skip(1, x, s), x + s)  # baseline: plain add


def test_ln_scale_uses_the_physical_layer_index():
    model = tiny(ln_scale=True, recur_layers=[1, 2])
    assert [b.ln_factor for b in model.blocks] == pytest.approx([1 / math.sqrt(i + 1) for i in range(4)])
    block, plain = model.blocks[2], tiny().blocks[2]
    x = torch.randn(1, 3, 32)
    torch.testing.assert_close(block.normed(block.attn_norm, x), F.rms_norm(x, (32,)) / math.sqrt(3))
    assert torch.equal(plain.normed(plain.attn_norm, x), F.rms_norm(x, (32,)))  # off: the plain norm


def test_depth_recurrence_order_switch_and_encoder_split():
    assert layer_order(list(range(11)), [3, 4, 5], 1, True) == [0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7, 8, 9, 10]
    assert layer_order(list(range(11)), [3, 4, 5], 2, True)[:12] == [0, 1, 2, 3, 4, 5, 3, 4, 5, 3, 4, 5]
    assert layer_order(list(range(11)), [3, 4, 5], 1, False) == list(range(11))
    model = noisy(tiny(num_layers=5, recur_layers=[1, 2], recur_start_step=3)).eval()
    assert model.layer_order() == [0, 1, 2, 1, 2, 3, 4]  # a rebuilt model evaluates with recurrence on
    ids = torch.randint(0, VOCAB, (2, 8))
    looped = model.logits(ids)
    model.on_train_step(2)
    assert model.layer_order() == [0, 1, 2, 3, 4]
    assert not torch.allclose(model.logits(ids), looped)
    model.on_train_step(3)
    assert torch.equal(model.logits(ids), looped)
    # Skip weights stay sized for the 5 physical layers: min(2, 3) = 2, whatever the virtual depth.
    assert model.skip_weights.shape == (2, 32)


def test_parallel_residual_forms():
    block = noisy(tiny(parallel_residual="two_lane", parallel_start=2)).blocks[3]
    lane0, lane1, x0 = torch.randn(3, 1, 4, 32).unbind(0)
    new0, new1, _ = block.forward_two_lane(lane0, lane1, x0)
    # The MLP lane reads only itself; the attention lane mixes x0 in.
    torch.testing.assert_close(new1, lane1 + block.mlp_branch(lane1))
    a = block.mix(lane0, x0)
    torch.testing.assert_close(new0, a + block.attn_branch(a)[0])
    gptj, _ = block.forward_gptj(lane0, x0)
    torch.testing.assert_close(gptj, a + block.attn_branch(a)[0] + block.mlp_branch(a))
    model = tiny(parallel_residual="two_lane", parallel_start=2)
    assert model.lane_merge.item() == 0.5 and tiny(parallel_residual="gptj").lane_merge is None


def test_two_lane_mlps_never_see_attention_of_the_parallel_layers():
    # 6 layers, lanes from block 4: lane1 after the split depends on attention only through the stream
    # at the split; changing block 4's and 5's attention changes lane0 alone.
    model = noisy(tiny(num_layers=6, parallel_residual="two_lane", parallel_start=4)).eval()
    ids = torch.randint(0, VOCAB, (1, 8))
    model.lane_merge.data.fill_(0.0)  # the output is lane1 alone
    before = model.hidden_states(ids)
    with torch.no_grad():
        model.blocks[4].attn.c_v.weight.add_(1.0)
        model.blocks[5].attn.c_v.weight.add_(1.0)
    torch.testing.assert_close(model.hidden_states(ids), before)
    with torch.no_grad():
        model.blocks[3].attn.c_v.weight.add_(1.0)  # before the split: both lanes inherit it
    assert not torch.allclose(model.hidden_states(ids), before)
    model.lane_merge.data.fill_(1.0)
    with torch.no_grad():
        model.blocks[5].attn.c_v.weight.add_(1.0)
    assert not torch.allclose(model.hidden_states(ids), before)


def test_ebls_shared_blocks_gammas_and_penalty():
    model = tiny(num_layers=6, ebls_blocks=2, ebls_rank=4)
    assert len(model.blocks) == 2 and len(model.virtual_layers) == 6
    assert model.layer_order() == [0, 0, 0, 1, 1, 1]
    assert not hasattr(model.blocks[0], "attn_scale")  # per-layer vectors live in the virtual layers
    gammas = model.gammas()
    assert sorted(gammas) == sorted(f"{p}_{i:02d}" for p in ("attn", "mlp") for i in range(6))
    assert all(g == pytest.approx(1 / (1 + math.exp(2.0))) for g in gammas.values())  # sigmoid(-2) ~ 0.119
    layer = model.virtual_layers[0]
    assert layer.attn_bypass.down.weight.shape == (4, 32) and (layer.attn_bypass.up.weight == 0).all()
    assert layer.attn_bypass.down.weight.std().item() == pytest.approx(1 / 4, rel=0.3)
    ids = torch.randint(0, VOCAB, (2, 8))
    model.eval()
    ce = model(ids, ids)
    model.train()
    penalty = 0.01 * 12 / (1 + math.exp(2.0))
    assert model(ids, ids).item() == pytest.approx(ce.item() + penalty, rel=1e-6)
    assert model(ids, ids, reduction="sum").item() == pytest.approx(model.eval()(ids, ids, reduction="sum").item())


def test_ebls_bypass_adds_a_gated_low_rank_map():
    model = noisy(tiny(num_layers=2, ebls_blocks=1, ebls_rank=4))
    layer, block = model.virtual_layers[0], model.blocks[0]
    x, x0 = torch.randn(2, 1, 5, 32).unbind(0)
    out, _ = layer(x, x0, block)
    mix = layer.resid_mix
    h = mix[0] * x + mix[1] * x0
    a = block.attn_norm(h)
    bypass = a @ layer.attn_bypass.down.weight.T @ layer.attn_bypass.up.weight.T
    h = h + layer.attn_scale * (block.attn(a)[0] + torch.sigmoid(layer.attn_gamma_logit) * bypass)
    m = block.mlp_norm(h)
    h = h + layer.mlp_scale * (block.mlp(m) + torch.sigmoid(layer.mlp_gamma_logit) * layer.mlp_bypass(m))
    torch.testing.assert_close(out, h)


def test_orthogonal_init_pass():
    torch.manual_seed(0)
    model = GPT(ArchConfig(vocab_size=VOCAB, num_layers=2, model_dim=64, ortho_init=True, bigram_buckets=32,
                           bigram_dim=64, bigram_init_std=0.0, bigram_scale_init=0.05, attn_gate=True))
    for name in ("blocks.0.attn.c_q", "blocks.1.mlp.fc", "bigram.proj"):
        w = model.get_submodule(name).weight
        rows = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        torch.testing.assert_close(rows, torch.eye(rows.shape[0]), atol=1e-5, rtol=0)
    for name in ("blocks.0.attn.proj", "blocks.1.mlp.proj", "blocks.0.attn.attn_gate"):
        assert (model.get_submodule(name).weight == 0).all()  # zero-init flags survive the pass
    plain = GPT(ArchConfig(vocab_size=VOCAB, num_layers=2, model_dim=64, bigram_buckets=32, bigram_dim=64))
    assert (plain.bigram.proj.weight == 0).all()


def test_orthogonal_init_scales_side_table_projections_by_one_over_sqrt_2l():
    """PR #589 / #484: every non-zero linear named `.proj` is orthogonal x 1/sqrt(2L); in that stack those are the
    BigramHash and value-embedding projections (the attention / MLP `.proj` are zero-init)."""
    arch = dict(vocab_size=VOCAB, num_layers=3, model_dim=64, num_kv_heads=8, ortho_init=True, bigram_buckets=32,
                bigram_dim=64, bigram_init_std=0.0, bigram_scale_init=0.05, value_embed_dim=64,
                value_embed_layers=[2])
    torch.manual_seed(0)
    scaled = GPT(ArchConfig(**arch, ortho_proj_scale=True))
    for name in ("bigram.proj", "value_embed.proj"):
        singular = torch.linalg.svdvals(scaled.get_submodule(name).weight)
        torch.testing.assert_close(singular, torch.full_like(singular, 1 / math.sqrt(6)), atol=1e-5, rtol=0)
    for name in ("blocks.0.attn.c_q", "blocks.2.mlp.fc"):
        singular = torch.linalg.svdvals(scaled.get_submodule(name).weight)
        torch.testing.assert_close(singular, torch.ones_like(singular), atol=1e-5, rtol=0)
    assert (scaled.blocks[0].attn.proj.weight == 0).all() and (scaled.blocks[1].mlp.proj.weight == 0).all()


# ---- categories and config rules -------------------------------------------------------------------------

def test_new_tensors_get_sensible_roles_and_categories():
    model = tiny(num_layers=6, ebls_blocks=2, bigram_buckets=32, bigram_dim=16, bigram_scale_init=0.05, smear=True,
                 skip_gates=True, value_embed_dim=8, value_embed_layers=[1], value_residual=True, attn_gate=True,
                 mlp="star_relu")
    roles = {name: role for role, named in split_parameters(model).items() for name, _ in named}
    declared = parameter_roles(model)
    assert {n for n, r in roles.items() if r == "embed"} == {"tok_emb.weight", "bigram.table.weight",
                                                             "value_embed.table.weight"}
    assert roles["bigram.proj.weight"] == roles["value_embed.proj.weight"] == "matrix"
    for name in ("skip_gates", "smear.gate", "bigram.scale",
                 "value_embed.scale", "blocks.1.attn.ve_layer_scale", "blocks.1.attn.vrl_lambda",
                 "blocks.0.attn.attn_gate.weight", "virtual_layers.3.attn_gamma_logit",
                 "virtual_layers.3.attn_bypass.down.weight", "blocks.0.mlp.scale"):
        assert roles[name] == "scalar", name
    block_matrices = [n for n in roles if n.startswith("blocks.") and n.endswith(("c_q.weight", "fc.weight"))]
    assert all(roles[n] == "matrix" for n in block_matrices)
    for name in ("skip_gates", "smear.gate", "bigram.scale", "value_embed.scale", "blocks.1.attn.ve_layer_scale",
                 "blocks.1.attn.vrl_lambda", "blocks.0.attn.attn_gate.weight", "virtual_layers.3.mlp_gamma_logit",
                 "virtual_layers.3.resid_mix"):
        assert declared[name].control, name  # fp32, scalar Adam, never quantized
    assert GPT.PARAM_ROLES["lane_merge"].control
    # Every 2-D tensor outside Muon and the embeddings is a control tensor or an EBLS bypass (Adam, scalar LR).
    controls = [n for n, p in model.named_parameters() if p.ndim == 2 and roles[n] == "scalar"]
    assert all(declared[n].control or "_bypass." in n for n in controls), controls
    assert declared["bigram.table.weight"].quant == declared["value_embed.table.weight"].quant == "embed"
    assert declared["bigram.proj.weight"].quant == "other" and declared["blocks.1.attn.c_q.weight"].quant == "attn"
    assert declared["virtual_layers.2.attn_bypass.up.weight"].quant == "other"
    # PR #484's TTT freeze list: the token embedding, the output head (tied here) and the whole BigramHash.
    assert {n for n, r in declared.items() if r.embedding} == {"tok_emb.weight", "bigram.table.weight",
                                                               "bigram.proj.weight", "bigram.scale"}


def _config(**arch) -> GolfConfig:
    return GolfConfig(arch=ArchConfig(**arch))


@pytest.mark.parametrize("arch, message", [
    (dict(rope_dims=7), "arch.rope_dims=7 must be even"),
    (dict(rope_dims=128), "in [0, head dim 64]"),
    (dict(xsa_layers=[0, 9]), "arch.xsa_layers=[0, 9] must list distinct physical block indices in [0, 8]"),
    (dict(value_embed_dim=64), "go together"),
    (dict(recur_layers=[3, 5]), "contiguous ascending range"),
    (dict(ebls_blocks=4), "arch.ebls_blocks=4 must divide arch.num_layers=9"),
    (dict(ebls_blocks=3, recur_layers=[1, 2]), "does not combine with arch.recur_layers"),
    (dict(bigram_buckets=64, bigram_init_std=0.0), "neither ever gets a gradient"),
    (dict(mlp=MLPKind.leaky_relu2, mlp_leaky_slope=0.0), "arch.mlp_leaky_slope=0.0 must be in (0, 1)"),
    (dict(parallel_residual=ParallelResidual.two_lane, parallel_start=9), "arch.parallel_start=9"),
    (dict(bos_id=1024), "arch.bos_id=1024"),
])
def test_bad_arch_options_are_clear_config_errors(arch, message):
    with pytest.raises(ConfigError) as err:
        validate(_config(**arch))
    assert message in str(err.value)


def test_valid_options_pass_validation():
    validate(_config(bigram_buckets=64, bigram_hash=BigramHashKind.xor, bigram_init_std=0.0, ortho_init=True,
                     rope_dims=16, rope_ntk_train_len=1024, xsa_layers=[7, 8], recur_layers=[3, 4]))


def test_recurrence_switch_recompiles_under_torch_compile():
    """The flip retraces (fullgraph, as the worker compiles) even after eager runs filled the rotary cache."""
    model = noisy(tiny(recur_layers=[1, 2], recur_start_step=1)).eval()
    ids = torch.randint(0, VOCAB, (2, 8))
    compiled = torch.compile(model.logits, backend="eager", fullgraph=True, dynamic=False)
    model.on_train_step(0)
    torch.testing.assert_close(compiled(ids), model.logits(ids))
    model.on_train_step(1)
    torch.testing.assert_close(compiled(ids), model.logits(ids))
    assert len(model.layer_order()) == 6
