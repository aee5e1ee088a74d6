"""The baseline GPT (golf.models), its optimizer split (golf.optim.param_groups), Muon
(golf.optim.muon) and the LR / momentum schedules (golf.optim.schedule)."""

import itertools
import math

import pytest
import torch

from golf.config.arch import ArchConfig
from golf.config.optimizer import OptimizerConfig
from golf.models.registry import build_model
from golf.optim.muon import Muon, newton_schulz5
from golf.optim.param_groups import build_optimizers, split_parameters
from golf.optim.schedule import lr_multiplier, muon_momentum

pytestmark = pytest.mark.usefixtures("single_thread")


def _arch(**overrides) -> ArchConfig:
    """The official baseline's hyper-parameters, spelled out (they are also ArchConfig's defaults)."""
    fields = dict(name="baseline", vocab_size=1024, num_layers=9, model_dim=512, num_heads=8, num_kv_heads=4,
                  mlp_mult=2, tie_embeddings=True, tied_embed_init_std=0.005, logit_softcap=30.0,
                  rope_base=10000.0, qk_gain_init=1.5)
    fields.update(overrides)
    return ArchConfig(**fields)


TINY = dict(num_layers=2, model_dim=64, num_heads=4, num_kv_heads=2)


def _build(seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return build_model(_arch(**overrides))


@pytest.fixture(scope="module")
def baseline():
    return _build()


def test_baseline_parameter_count_matches_the_official_record(baseline):
    assert sum(p.numel() for p in baseline.parameters()) == 17_059_912


def test_same_seed_gives_bit_identical_weights(baseline):
    again = _build()
    a, b = baseline.state_dict(), again.state_dict()
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = _build(seed=1)
    assert not torch.equal(other.tok_emb.weight, baseline.tok_emb.weight)


def test_baseline_init(baseline):
    std = baseline.tok_emb.weight.std().item()
    assert abs(std - 0.005) / 0.005 < 0.05
    assert len(baseline.blocks) == 9
    for block in baseline.blocks:
        # The output projections start at zero, so every block starts as the identity.
        assert (block.attn.proj.weight == 0).all()
        assert (block.mlp.proj.weight == 0).all()
        # The input projections are not zero (they carry the default Linear init).
        assert block.attn.c_q.weight.abs().sum() > 0 and block.mlp.fc.weight.abs().sum() > 0
        assert block.attn.c_k.weight.shape == (4 * 64, 512)  # num_kv_heads * head_dim rows
        assert torch.equal(block.attn.q_gain, torch.full((8,), 1.5))
        assert torch.equal(block.resid_mix, torch.stack((torch.ones(512), torch.zeros(512))))
        assert torch.equal(block.attn_scale, torch.ones(512))
        assert torch.equal(block.mlp_scale, torch.ones(512))
    # 9 layers: 4 encoder blocks push skips, 5 decoder blocks, min(4, 5) = 4 skip weights.
    assert baseline.skip_weights.shape == (4, 512)
    assert torch.equal(baseline.skip_weights, torch.ones(4, 512))
    assert baseline.lm_head is None


def test_untied_variant_has_a_zero_head():
    untied = _build(**TINY, tie_embeddings=False)
    assert untied.lm_head is not None and untied.lm_head.weight.shape == (1024, 64)
    assert (untied.lm_head.weight == 0).all()


def _noisy_tiny_model(seed: int = 0):
    model = _build(seed, **TINY)
    # Without noise the zero-initialized projections hide attention entirely and causality would
    # hold trivially.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


@pytest.mark.parametrize("t", [0, 1, 9, 30, 31])
def test_causality_future_tokens_never_change_past_logits(t):
    model = _noisy_tiny_model()
    tokens = torch.randint(0, 1024, (2, 32), generator=torch.Generator().manual_seed(3))
    changed = tokens.clone()
    changed[:, t] = (changed[:, t] + 517) % 1024
    with torch.no_grad():
        before, after = model.logits(tokens), model.logits(changed)
    assert torch.equal(before[:, :t], after[:, :t])
    # The perturbation is visible at t and (through attention) after it, so the test can fail.
    assert not torch.equal(before[:, t], after[:, t])
    if t < 31:
        assert not torch.equal(before[:, t + 1 :], after[:, t + 1 :])


def _names(named) -> set[str]:
    return {name for name, _ in named}


def test_split_parameters_roles():
    model = _build(**{**TINY, "num_layers": 3})
    roles = split_parameters(model)
    matrices = {f"blocks.{i}.{m}.weight" for i in range(3)
                for m in ("attn.c_q", "attn.c_k", "attn.c_v", "attn.proj", "mlp.fc", "mlp.proj")}
    scalars = {f"blocks.{i}.{s}" for i in range(3) for s in ("attn.q_gain", "attn_scale", "mlp_scale", "resid_mix")}
    scalars.add("skip_weights")
    assert _names(roles["matrix"]) == matrices
    assert all(p.ndim == 2 for _, p in roles["matrix"])
    assert _names(roles["scalar"]) == scalars
    assert _names(roles["embed"]) == {"tok_emb.weight"}
    assert roles["head"] == []

    untied = split_parameters(_build(**TINY, tie_embeddings=False))
    assert _names(untied["head"]) == {"lm_head.weight"}
    assert _names(untied["embed"]) == {"tok_emb.weight"}


def _optimizer_params(optimizers) -> list[int]:
    return [id(p) for opt in optimizers.values() for group in opt.param_groups for p in group["params"]]


@pytest.mark.parametrize("tied", [True, False])
def test_build_optimizers_learning_rates_and_coverage(tied):
    model = _build(**TINY, tie_embeddings=tied)
    optimizers = build_optimizers(model, OptimizerConfig(), tie_embeddings=tied, fused=False)
    expected_lr = {"embed": 0.05 if tied else 0.6, "matrix": 0.04, "scalar": 0.04}
    if not tied:
        expected_lr["head"] = 0.008
    assert set(optimizers) == set(expected_lr)
    for role, lr in expected_lr.items():
        for group in optimizers[role].param_groups:
            assert group["lr"] == lr and group["base_lr"] == lr, role
    assert isinstance(optimizers["matrix"], Muon)
    assert optimizers["matrix"].param_groups[0]["momentum"] == 0.95
    for role in expected_lr.keys() - {"matrix"}:
        group = optimizers[role].param_groups[0]
        assert isinstance(optimizers[role], torch.optim.Adam)
        assert group["betas"] == (0.9, 0.95) and group["eps"] == 1e-8
    # Every parameter is stepped by exactly one optimizer.
    ids = _optimizer_params(optimizers)
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters()}


def test_newton_schulz_pushes_singular_values_towards_one():
    g = torch.randn(64, 32, generator=torch.Generator().manual_seed(0)) * 7.0
    out = newton_schulz5(g, steps=5)
    assert out.shape == g.shape and out.dtype == torch.bfloat16
    # The quintic coefficients trade exactness for speed: the singular values land in a band
    # around 1 (roughly 0.7-1.2), not exactly on 1.
    s_in = torch.linalg.svdvals(g)
    s = torch.linalg.svdvals(out.float())
    assert s_in.max() / s_in.min() > 3  # the input really is far from orthogonal
    assert s.min() > 0.5 and s.max() < 1.5
    # The input is normalized first, so its scale does not matter (a power of two keeps bf16 exact).
    assert torch.equal(newton_schulz5(g * 1024, steps=5), out)


def test_newton_schulz_handles_tall_and_wide_alike():
    tall = torch.randn(96, 24, generator=torch.Generator().manual_seed(1))
    out_tall = newton_schulz5(tall, steps=5)
    out_wide = newton_schulz5(tall.T.contiguous(), steps=5)
    assert out_tall.shape == (96, 24) and out_wide.shape == (24, 96)
    # A tall matrix is processed as its transpose, so the two results are transposes of each other.
    torch.testing.assert_close(out_tall.float(), out_wide.T.float(), atol=1e-2, rtol=0)
    s = torch.linalg.svdvals(out_tall.float())
    assert s.min() > 0.5 and s.max() < 1.5


@pytest.mark.parametrize("shape", [(64, 32), (32, 64)])
def test_one_muon_step_matches_hand_computation(shape):
    gen = torch.Generator().manual_seed(2)
    w0 = torch.randn(*shape, generator=gen)
    grad = torch.randn(*shape, generator=gen)
    w = torch.nn.Parameter(w0.clone())
    w.grad = grad.clone()
    lr = 0.1
    Muon([w], lr=lr, momentum=0.0, backend_steps=5, nesterov=True).step()
    # Tall matrices get sqrt(rows / cols) more, wide ones exactly the orthogonalized gradient.
    scale = math.sqrt(max(1.0, shape[0] / shape[1]))
    expected = w0 - lr * scale * newton_schulz5(grad, steps=5).float()
    # The update is kept in bf16, so it matches to bf16 precision of lr * scale * |u| (< ~0.3).
    torch.testing.assert_close(w.detach(), expected, atol=lr * scale * 1.5 * 2**-8, rtol=0)
    assert not torch.allclose(w.detach(), w0)


def test_muon_nesterov_momentum_over_two_steps():
    gen = torch.Generator().manual_seed(4)
    w0 = torch.randn(32, 48, generator=gen)
    g1, g2 = torch.randn(32, 48, generator=gen), torch.randn(32, 48, generator=gen)
    w = torch.nn.Parameter(w0.clone())
    opt = Muon([w], lr=0.05, momentum=0.9, backend_steps=5, nesterov=True)
    w.grad = g1.clone()
    opt.step()
    w.grad = g2.clone()
    opt.step()
    # buf1 = g1; u1 = g1 + 0.9 g1.  buf2 = 0.9 g1 + g2; u2 = g2 + 0.9 buf2.
    u1 = newton_schulz5(g1 + 0.9 * g1, steps=5).float()
    u2 = newton_schulz5(g2 + 0.9 * (0.9 * g1 + g2), steps=5).float()
    torch.testing.assert_close(w.detach(), w0 - 0.05 * (u1 + u2), atol=0.05 * 2 * 1.5 * 2**-8, rtol=0)


def test_lr_multiplier_without_cap_decays_over_the_last_warmdown_steps():
    def lr(step):
        return lr_multiplier(step, elapsed_ms=0.0, iterations=100, warmdown_iters=20, max_wallclock_ms=None)

    assert [lr(s) for s in (0, 50, 79)] == [1.0, 1.0, 1.0]
    assert lr(80) == 1.0
    assert lr(90) == pytest.approx(0.5)
    assert lr(99) == pytest.approx(0.05)
    # Linear: equal steps, equal decrements.
    steps = [lr(s) for s in range(80, 100)]
    assert all(a - b == pytest.approx(0.05) for a, b in itertools.pairwise(steps))
    assert lr_multiplier(5, 0.0, 100, 0, None) == 1.0  # no warmdown at all


def test_lr_multiplier_with_wallclock_cap():
    cap = 600_000.0

    def lr(step, elapsed):
        return lr_multiplier(step, elapsed_ms=elapsed, iterations=20_000, warmdown_iters=1200, max_wallclock_ms=cap)

    # 100 ms/step: the warmdown window is the last 1200 * 100 = 120 s of the cap.
    assert lr(1000, 100_000.0) == 1.0
    assert lr(4700, 470_000.0) == 1.0  # 130 s left, still outside the window
    assert lr(5000, 500_000.0) == pytest.approx(100_000 / 120_000)
    assert lr(5900, 590_000.0) == pytest.approx(10_000 / 120_000)
    # 500 ms/step: a 600 s window, so the decay already runs at 100 s elapsed.
    assert lr(200, 100_000.0) == pytest.approx(500_000 / 600_000)
    # At or past the cap the multiplier is 0, never negative.
    assert lr(6000, cap) == 0.0
    assert lr(6100, cap + 10_000) == 0.0


def test_muon_momentum_warmup():
    def mom(step):
        return muon_momentum(step, start=0.85, end=0.95, warmup_steps=500)

    assert mom(0) == pytest.approx(0.85)
    assert mom(250) == pytest.approx(0.90)
    assert mom(100) == pytest.approx(0.87)
    assert mom(500) == pytest.approx(0.95)
    assert mom(501) == mom(10_000) == pytest.approx(0.95)
    assert muon_momentum(3, 0.85, 0.95, warmup_steps=0) == 0.95


def test_training_after_inference_mode_eval_rebuilds_rotary_tables():
    # Validation at step 0 runs under inference_mode; training right after must not reuse its tables.
    model = build_model(_arch(num_layers=2, model_dim=64, num_heads=4, num_kv_heads=2))
    x = torch.randint(0, 1024, (2, 16))
    with torch.inference_mode():
        model(x, x)
    model(x, x).backward()
    assert model.tok_emb.weight.grad is not None
