"""The training-recipe options: weight averaging, Muon options, AdamW groups, decoder LR multiplier,
fraction warmdown, batch-shape schedules, model hooks and their config validation."""

import pytest
import torch
from hydra import compose, initialize
from omegaconf import OmegaConf

from golf.checkpoint import Checkpointer
from golf.config.arch import ArchConfig
from golf.config.compose import register_schemas
from golf.config.optimizer import OptimizerConfig
from golf.config.schema import GolfConfig
from golf.config.validate import validate
from golf.data.loader import DistributedTokenLoader
from golf.data.shard_writer import write_shard
from golf.errors import ConfigError
from golf.job_trainer import JobTrainer
from golf.models.registry import build_model
from golf.optim.averaging import EMA, SWA
from golf.optim.muon import newton_schulz, newton_schulz5
from golf.optim.muon_options import MuonWithOptions, coefficient_schedule
from golf.optim.param_groups import build_optimizers
from golf.optim.schedule import fraction_lr_multiplier, shape_stages, tokens_through
from golf.utils.runtime import Runtime

pytestmark = pytest.mark.usefixtures("single_thread")

VOCAB = 64


def _model(num_layers: int = 2, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(ArchConfig(vocab_size=VOCAB, num_layers=num_layers, model_dim=32, num_heads=2, num_kv_heads=1))


def _cfg(*dotlist: str) -> GolfConfig:
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(GolfConfig), OmegaConf.from_dotlist(list(dotlist))))


def _train_steps(model, optimizers, n: int, after_step=lambda step: None) -> None:
    gen = torch.Generator().manual_seed(1)
    for step in range(1, n + 1):
        x = torch.randint(0, VOCAB, (2, 16), generator=gen)
        model(x, torch.roll(x, -1, dims=1)).backward()
        for opt in optimizers.values():
            opt.step()
            opt.zero_grad(set_to_none=True)
        after_step(step)


def _float_state(model) -> dict:
    return {k: v.detach().float().clone() for k, v in model.state_dict().items()}


def test_ema_matches_a_hand_computed_average_after_three_steps():
    model = _model()
    optimizers = build_optimizers(model, OptimizerConfig(), tie_embeddings=True, fused=False)
    ema, decay = EMA(model, 0.9), 0.9
    expected = _float_state(model)  # starts from the weights training starts with

    def update(step):
        ema.update(step, lr_mul=1.0)
        for key, theta in _float_state(model).items():
            expected[key] = decay * expected[key] + (1 - decay) * theta

    _train_steps(model, optimizers, 3, update)
    assert ema.count == 3
    for key, value in expected.items():
        torch.testing.assert_close(ema.state[key], value, rtol=1e-6, atol=1e-7)
    last = _float_state(model)
    assert any(not torch.allclose(last[k], expected[k]) for k in last)  # the average really lags the weights
    ema.apply()
    assert all(torch.equal(model.state_dict()[k], ema.state[k]) for k in ema.state)
    assert ema.summary() == {"method": "ema", "applied": True, "decay": 0.9, "updates": 3}


def test_swa_loads_the_mean_of_its_snapshots():
    model = _model()
    optimizers = build_optimizers(model, OptimizerConfig(), tie_embeddings=True, fused=False)
    swa = SWA(model, every=2, below=0.5)
    lr_muls = {1: 0.9, 2: 0.6, 3: 0.4, 4: 0.4, 5: 0.2, 6: 0.1}  # snapshots after steps 4 and 6 only
    snapshots = []

    def update(step):
        swa.update(step, lr_muls[step])
        if step in (4, 6):
            snapshots.append(_float_state(model))

    _train_steps(model, optimizers, 6, update)
    assert swa.count == 2
    swa.apply()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, (snapshots[0][key] + snapshots[1][key]) / 2, rtol=1e-6, atol=1e-7)
    assert swa.summary() == {"method": "swa", "applied": True, "every": 2, "below": 0.5, "snapshots": 2}


def test_swa_without_snapshots_keeps_the_final_weights_and_says_so():
    model = _model()
    swa = SWA(model, every=1, below=0.1)
    swa.update(1, lr_mul=0.5)
    before = _float_state(model)
    swa.apply()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert swa.summary()["applied"] is False and swa.summary()["snapshots"] == 0


def test_averaging_state_survives_a_checkpoint(tmp_path):
    rt = Runtime(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"), autocast_dtype=None, compile=False)
    model = _model()
    optimizers = build_optimizers(model, OptimizerConfig(), tie_embeddings=True, fused=False)
    ema = EMA(model, 0.99)
    _train_steps(model, optimizers, 2, lambda step: ema.update(step, 1.0))
    loader = DistributedTokenLoader(_shards(tmp_path), 0, 1)
    saver = Checkpointer(tmp_path, "c" * 64, rt)
    saver.save(2, 1.0, 3.0, model, optimizers, loader, ema)
    fresh = _model(seed=5)
    fresh_ema = EMA(fresh, 0.99)
    saver.restore(saver.load(), fresh, build_optimizers(fresh, OptimizerConfig(), True, False), loader, fresh_ema)
    assert fresh_ema.count == 2
    assert all(torch.equal(fresh_ema.state[k], ema.state[k]) for k in ema.state)


@pytest.mark.parametrize("order", ["before", "after"])
def test_muon_weight_decay_before_or_after_the_update(order):
    gen = torch.Generator().manual_seed(3)
    w0, grad = torch.randn(32, 48, generator=gen), torch.randn(32, 48, generator=gen)
    lr, wd = 0.1, 0.5

    def step(**options):
        w = torch.nn.Parameter(w0.clone())
        w.grad = grad.clone()
        MuonWithOptions([w], lr=lr, momentum=0.0, backend_steps=5, **options).step()
        return w.detach()

    update = newton_schulz5(grad, steps=5).float()  # wide matrix: no sqrt(rows / cols) scale
    decayed = step(weight_decay=wd, wd_order=order)
    expected = w0 * (1 - lr * wd) - lr * update if order == "before" else (w0 - lr * update) * (1 - lr * wd)
    torch.testing.assert_close(decayed, expected, atol=2 * lr * 2**-8, rtol=0)
    other = step(weight_decay=wd, wd_order="after" if order == "before" else "before")
    # The two orders differ by exactly lr * wd * lr * update (the decay also hits, or misses, the update).
    torch.testing.assert_close((decayed - other).abs(), (lr * wd * lr * update).abs(), atol=1e-6, rtol=1e-3)
    assert torch.equal(step(), step(weight_decay=0.0, wd_order=order))  # wd 0 is the baseline


def test_polar_express_orthogonalizes_closely():
    g = torch.randn(64, 32, generator=torch.Generator().manual_seed(0)) * 7.0
    out = newton_schulz(g, coefficient_schedule("polar_express", 5), safety=1.02).float()
    s = torch.linalg.svdvals(out)
    assert s.min() > 0.8 and s.max() < 1.2
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    assert (out - u @ vh).abs().max() < 0.2  # close to the exact polar factor U V^T
    assert coefficient_schedule("polar_express", 4) == coefficient_schedule("polar_express", 5)[:4]
    with pytest.raises(ValueError, match="5 coefficient sets"):
        coefficient_schedule("polar_express", 6)


def test_row_normalisation_makes_the_update_blind_to_row_scale():
    gen = torch.Generator().manual_seed(6)
    grad = torch.randn(24, 40, generator=gen)
    scaled = grad.clone()
    scaled[3] *= 50.0

    def update(g, row_norm):
        w = torch.nn.Parameter(torch.zeros(24, 40))
        w.grad = g.clone()
        MuonWithOptions([w], lr=1.0, momentum=0.0, backend_steps=5, row_norm=row_norm).step()
        return -w.detach()

    torch.testing.assert_close(update(grad, True), update(scaled, True), atol=2**-7, rtol=0)
    assert (update(grad, False) - update(scaled, False)).abs().max() > 0.05


def test_newton_schulz_compiles_as_one_graph():
    compiled = torch.compile(newton_schulz, fullgraph=True, backend="eager")  # fullgraph: a graph break fails
    g = torch.randn(3, 16, 8, generator=torch.Generator().manual_seed(7))  # a bank of three matrices
    coeffs = coefficient_schedule("ns5", 5)
    assert torch.equal(compiled(g, coeffs), newton_schulz(g, coeffs))
    assert torch.equal(newton_schulz(g, coeffs)[1], newton_schulz(g[1], coeffs))  # banks = per matrix


def _param_groups_by_id(optimizers) -> dict[int, tuple[str, float]]:
    return {id(p): (role, group["base_lr"]) for role, opt in optimizers.items()
            for group in opt.param_groups for p in group["params"]}


def test_decoder_lr_mult_hits_exactly_the_decoder_blocks_tensors():
    model = _model(num_layers=4)
    cfg = OptimizerConfig(decoder_lr_mult=2.0)
    got = _param_groups_by_id(build_optimizers(model, cfg, tie_embeddings=True, fused=False))
    decoder = {id(p) for block in model.blocks[2:] for p in block.parameters()}
    base = {"matrix": cfg.matrix_lr, "scalar": cfg.scalar_lr, "embed": cfg.tied_embed_lr}
    for name, p in model.named_parameters():
        role, lr = got[id(p)]
        assert lr == base[role] * (2.0 if id(p) in decoder else 1.0), name
    doubled = {id(p) for p in model.parameters() if got[id(p)][1] != base[got[id(p)][0]]}
    assert doubled == decoder and {got[i][0] for i in doubled} == {"matrix", "scalar"}
    assert got[id(model.skip_weights)][1] == cfg.scalar_lr  # model-level scalars are not in a block


def test_decoder_lr_mult_leaves_tensors_shared_with_the_encoder_at_base_lr():
    model = _model(num_layers=4)
    model.blocks[3].mlp = model.blocks[0].mlp  # one MLP serving an encoder and a decoder depth
    cfg = OptimizerConfig(decoder_lr_mult=2.0)
    got = _param_groups_by_id(build_optimizers(model, cfg, tie_embeddings=True, fused=False))
    assert all(got[id(p)][1] == cfg.matrix_lr for p in model.blocks[0].mlp.parameters())
    assert all(got[id(p)][1] == 2 * cfg.matrix_lr for p in model.blocks[3].attn.parameters() if p.ndim == 2)


def test_decoder_lr_mult_off_keeps_one_group_per_optimizer():
    optimizers = build_optimizers(_model(num_layers=4), OptimizerConfig(), tie_embeddings=True, fused=False)
    assert all(len(opt.param_groups) == 1 for opt in optimizers.values())


def test_embedding_and_scalar_weight_decay_switch_to_adamw():
    model = _model()
    plain = build_optimizers(model, OptimizerConfig(), tie_embeddings=True, fused=False)
    assert type(plain["embed"]) is torch.optim.Adam and type(plain["scalar"]) is torch.optim.Adam
    decayed = build_optimizers(model, OptimizerConfig(embed_weight_decay=0.04, scalar_weight_decay=0.02),
                               tie_embeddings=True, fused=False)
    assert type(decayed["embed"]) is torch.optim.AdamW and decayed["embed"].defaults["weight_decay"] == 0.04
    assert type(decayed["scalar"]) is torch.optim.AdamW and decayed["scalar"].defaults["weight_decay"] == 0.02


def test_fraction_warmdown_without_and_with_a_wallclock_cap():
    def lr(step, elapsed=0.0, cap=None):
        return fraction_lr_multiplier(step, elapsed, iterations=100, fraction=0.5, floor=0.1, max_wallclock_ms=cap)

    assert [lr(s) for s in (0, 30, 49)] == [1.0, 1.0, 1.0]
    assert lr(50) == pytest.approx(1.0)
    assert lr(75) == pytest.approx(0.5)  # (1 - 0.75) / 0.5: linear towards 0 ...
    assert lr(94) == pytest.approx(0.12)
    assert lr(96) == pytest.approx(0.1) and lr(100) == pytest.approx(0.1)  # ... clamped at the floor (MIN_LR)
    # With a cap the progress is elapsed time, whatever the step.
    assert lr(10, elapsed=400.0, cap=1000.0) == 1.0
    assert lr(10, elapsed=800.0, cap=1000.0) == pytest.approx(0.4)
    assert lr(10, elapsed=1000.0, cap=1000.0) == pytest.approx(0.1)


def _shards(tmp_path) -> str:
    gen = torch.Generator().manual_seed(0)
    for i in range(2):
        write_shard(tmp_path / f"r_train_{i:06d}.bin", torch.randint(0, VOCAB, (3000,), generator=gen).tolist())
    return str(tmp_path / "r_train_*.bin")


class _Sink:
    def __init__(self):
        self.records = []

    def log(self, step, metrics):
        self.records.append((step, metrics))


def test_trainer_follows_the_batch_schedules_and_calls_the_model_hooks(tmp_path):
    cfg = _cfg("train.iterations=4", "train.batch_tokens=64", "train.seq_len=16", "train.grad_accum_steps=1",
               "train.warmup_steps=6", "train.val_every=0", "train.log_every=2", "train.checkpoint_every_minutes=0",
               "train.seq_len_schedule=[[2,32]]", "train.batch_schedule=[[3,128]]", "budget.train_seconds=0")
    assert shape_stages(cfg.train) == [(0, 64, 16), (2, 64, 32), (3, 128, 32)]
    rt = Runtime(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"), autocast_dtype=None, compile=False)
    model = _model()
    shapes, hook_steps = [], []
    model.register_forward_pre_hook(lambda module, args: shapes.append(tuple(args[0].shape)))
    model.on_train_step = lambda step, progress: hook_steps.append((step, progress))
    model.gammas = lambda: {"attn_0": torch.tensor(0.25)}
    pattern, sink = _shards(tmp_path), _Sink()
    trainer = JobTrainer(model, model, build_optimizers(model, cfg.optimizer, True, False),
                         lambda: DistributedTokenLoader(pattern, 0, 1), cfg, rt, 1, lambda step, ms: None, sink,
                         Checkpointer(tmp_path, "s" * 64, rt))
    trainer.warmup()
    # the warmup compiles every scheduled shape with the model state of the first and of the last step
    assert shapes == [(4, 16), (2, 32), (4, 32)] * 2
    assert hook_steps == [(0, 0.0)] * 3 + [(4, 1.0)] * 3  # without a cap, progress = step / iterations
    shapes.clear()
    hook_steps.clear()
    outcome = trainer.run()
    assert shapes == [(4, 16), (4, 16), (2, 32), (4, 32)]
    assert hook_steps == [(0, 0.0), (1, 0.25), (2, 0.5), (3, 0.75)]
    assert outcome.tokens_seen == 64 * 3 + 128 == tokens_through(trainer.stages, 4)
    assert outcome.averaging == {"method": "none"}
    logged = [(step, m["ebls/attn_0"]) for step, m in sink.records]
    assert logged == [(1, 0.25), (2, 0.25), (3, 0.25), (4, 0.25)]  # every log step (the first 10 are all logged)
    # Under a wall-clock cap the progress is the share of the cap used, measured before each step.
    capped = _cfg("train.iterations=3", "train.batch_tokens=64", "train.seq_len=16", "train.grad_accum_steps=1",
                  "train.warmup_steps=0", "train.val_every=0", "train.checkpoint_every_minutes=0")
    hook_steps.clear()
    JobTrainer(model, model, build_optimizers(model, capped.optimizer, True, False),
               lambda: DistributedTokenLoader(pattern, 0, 1), capped, rt, 1, lambda step, ms: None, sink,
               Checkpointer(tmp_path / "capped", "c" * 64, rt), cap_seconds=3600).run()
    progress = [p for _, p in hook_steps]
    assert [s for s, _ in hook_steps] == [0, 1, 2] and 0 < progress[1] < progress[2] < 0.01


def _errors(*dotlist: str) -> str:
    with pytest.raises(ConfigError) as info:
        validate(_cfg(*dotlist))
    return str(info.value)


def test_recipe_config_errors_name_the_key_and_the_fix():
    validate(_cfg("train.ema_decay=0.997", "optimizer.muon_coeffs=polar_express", "optimizer.muon_backend_steps=4",
                  "train.seq_len_schedule=[[0,512],[100,1024]]", "train.warmdown_fraction=0.72"))
    assert "keep one (train.swa_every=0 or train.ema_decay=0)" in _errors("train.ema_decay=0.997", "train.swa_every=50")
    assert "train.ema_decay=1.0 must be in [0, 1)" in _errors("train.ema_decay=1.0")
    assert "train.lr_floor=0.1 only applies to the fraction warmdown" in _errors("train.lr_floor=0.1")
    assert "strictly increasing" in _errors("train.seq_len_schedule=[[100,512],[100,1024]]")
    assert "[[from_step, value], ...]" in _errors("train.batch_schedule=[[100]]")
    # 524288 tokens at seq_len 3000 cannot be cut into 8 micro-batches of whole sequences.
    assert "from step 500 the schedules give batch_tokens=524288, seq_len=3000" in _errors(
        "train.seq_len_schedule=[[500,3000]]")
    assert "optimizer.muon_backend_steps=6; set it to 1-5" in _errors("optimizer.muon_coeffs=polar_express",
                                                                      "optimizer.muon_backend_steps=6")
    assert "optimizer.decoder_lr_mult apply to the Muon split only" in _errors("optimizer.name=adamw",
                                                                               "optimizer.decoder_lr_mult=2")
    assert "optimizer.decoder_lr_mult=0.0 must be positive" in _errors("optimizer.decoder_lr_mult=0")


def test_muon_adamw_preset_is_the_published_split():
    register_schemas()
    with initialize(version_base="1.3", config_path="../golf/conf"):
        opt = OmegaConf.to_object(compose("config", overrides=["optimizer=muon_adamw"]).optimizer)
    validate(GolfConfig(optimizer=opt))
    optimizers = build_optimizers(_model(), opt, tie_embeddings=True, fused=False)
    assert type(optimizers["embed"]) is torch.optim.AdamW and type(optimizers["scalar"]) is torch.optim.AdamW
    muon = optimizers["matrix"].param_groups
    assert len(muon) == 1 and muon[0]["weight_decay"] == 0.04 and muon[0]["base_lr"] == 0.025


def test_wallclock_cap_stops_at_the_first_step_ending_past_it(tmp_path):
    """The official cap rule: no step starts after the cap; the step in flight may end after it."""
    cfg = _cfg("train.iterations=100000", "train.batch_tokens=64", "train.seq_len=16", "train.grad_accum_steps=1",
               "train.warmup_steps=0", "train.val_every=0", "train.log_every=0", "train.checkpoint_every_minutes=0",
               "budget.train_seconds=0.3")
    rt = Runtime(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"), autocast_dtype=None, compile=False)
    model = _model()
    pattern = _shards(tmp_path)
    trainer = JobTrainer(model, model, build_optimizers(model, cfg.optimizer, True, False),
                         lambda: DistributedTokenLoader(pattern, 0, 1), cfg, rt, 1, lambda step, ms: None, _Sink(),
                         Checkpointer(tmp_path, "s" * 64, rt), cap_seconds=cfg.budget.train_seconds)
    outcome = trainer.run()
    assert outcome.hit_wallclock_cap and 1 < outcome.steps < 100000
    assert outcome.last_step_start_s < 0.3 <= outcome.train_seconds


# PR #1550's Polar Express coefficients (its _PE_COEFFS, first four), copied as numbers.
PR1550_PE = ((8.156554524902461, -22.48329292557795, 15.878769915207462),
             (4.042929935166739, -2.808917465908714, 0.5000178451051316),
             (3.8916678022926607, -2.772484153217685, 0.5060648178503393),
             (3.285753657755655, -2.3681294933425376, 0.46449024233003106))


def _pr1550_orthogonalize(g: torch.Tensor) -> torch.Tensor:
    """PR #1550's zeropower_via_newtonschulz5 with muoneq_r: bf16, a tall matrix transposed to wide first, rows of
    that (columns of the original) normalized, then the Frobenius norm (no safety factor), 4 Polar Express steps."""
    x = g.bfloat16()
    tall = x.size(-2) > x.size(-1)
    if tall:
        x = x.mT
    x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-7)
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    for a, b, c in PR1550_PE:
        gram = x @ x.mT
        x = a * x + (b * gram + c * (gram @ gram)) @ x
    return (x.mT if tall else x).float()


@pytest.mark.parametrize("seed", [0, 1])
def test_muon_reproduces_pr1550s_update_on_a_tall_matrix(seed):
    """B4: optimizer.muon_pe_safety=1.0 and muon_row_norm_axis=transposed give PR #1550's update; the defaults
    (modded-nanogpt's 1.02 safety, MuonEq-R rows as stored) do not. Columns of very different scale make the
    normalization axis matter."""
    g = torch.randn(96, 32, generator=torch.Generator().manual_seed(seed)) * torch.linspace(0.1, 3.0, 32)
    reference = _pr1550_orthogonalize(g) * (96 / 32) ** 0.5  # Muon's sqrt(rows / cols) for a tall matrix

    def distance(**options) -> float:
        w = torch.nn.Parameter(torch.zeros(96, 32))
        w.grad = g.clone()
        MuonWithOptions([w], lr=1.0, momentum=0.0, backend_steps=4, coeffs="polar_express", row_norm=True,
                        **options).step()
        return float((-w.detach() - reference).abs().mean() / reference.abs().mean())

    assert distance(row_norm_axis="transposed", pe_safety=1.0) < 0.1  # bf16 rounding, in a different order
    assert distance(row_norm_axis="transposed") > 0.15  # the 1.02 safety factor alone
    assert distance(pe_safety=1.0) > 0.4  # rows of the tall matrix as stored
