"""Per-layer groups address the real weights (by identity, shared blocks included); LR and SNR scales."""

import math

import pytest
import torch
from test_sliding_eval import _model
from torch import nn

from golf.config.ttt import LayerLR, TTTConfig
from golf.models.layer_groups import layer_groups
from golf.optim.gradient_snr import GradientSNR, layer_snr, scale_gradients
from golf.ttt.training import apply_lr_policy, build_optimizer, select_trainable


def test_groups_cover_every_parameter_once_blocks_by_identity():
    model = _model()
    groups = layer_groups(model)
    assert [g.key for g in groups][:2] == ["layer_00", "layer_01"]
    assert sorted(g.key for g in groups[2:]) == ["skip_weights", "tok_emb"]
    ids = [id(p) for g in groups for p in g.params]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert {id(p) for p in groups[1].params} == {id(p) for p in model.blocks[1].parameters()}


def test_a_shared_block_is_one_group_serving_every_depth():
    model = _model()
    model.blocks = nn.ModuleList([model.blocks[0], model.blocks[1], model.blocks[0]])  # recurrence / sharing
    groups = layer_groups(model)
    assert [(g.key, g.depths) for g in groups if g.depths] == [("layer_00", [0, 2]), ("layer_01", [1])]
    apply_lr_policy(groups, "discriminative", [], 0)
    # depth 0 -> 0.3, depth 2 -> 1.0: the shared weights take the mean over the depths they serve
    assert groups[0].lr_mult == pytest.approx(0.65) and groups[1].lr_mult == pytest.approx(0.65)


def test_discriminative_and_multiplier_policies():
    model = _model()
    model.blocks = nn.ModuleList([_model().blocks[0] for _ in range(5)])
    groups = layer_groups(model)
    apply_lr_policy(groups, "discriminative", [], 0)
    assert [g.lr_mult for g in groups] == pytest.approx([0.3, 0.475, 0.65, 0.825, 1.0, 1.0, 1.0])
    apply_lr_policy(groups, "discriminative", [], 1)  # frozen block 0: the ramp starts at block 1
    assert [g.lr_mult for g in groups[:5]] == pytest.approx([0.3, 0.3, 0.5333333, 0.7666667, 1.0])
    apply_lr_policy(groups, "multipliers", [2.0, 1.0, 0.5, 0.5, 1.0], 0)
    assert [g.lr_mult for g in groups[:5]] == [2.0, 1.0, 0.5, 0.5, 1.0]


def test_optimizer_groups_carry_the_multipliers_and_freezing():
    model = _model()
    cfg = TTTConfig(layer_lr=LayerLR.discriminative, freeze_embeddings=True, lr=0.1)
    opt = build_optimizer(select_trainable(model, cfg), cfg)
    assert [(g["key"], g["lr"]) for g in opt.param_groups] == [("layer_00", pytest.approx(0.03)),
                                                               ("layer_01", pytest.approx(0.1)),
                                                               ("skip_weights", pytest.approx(0.1))]
    assert not model.tok_emb.weight.requires_grad
    cfg = TTTConfig(freeze_blocks=1, freeze_pattern=r"skip_weights")
    opt = build_optimizer(select_trainable(model, cfg), cfg)
    assert [g["key"] for g in opt.param_groups] == ["layer_01", "tok_emb"]


def test_snr_estimators_match_their_definitions():
    torch.manual_seed(0)
    eb, eb_abs = layer_snr([torch.randn(200_000)]).tolist()
    assert eb_abs == pytest.approx(math.sqrt(2 / math.pi), abs=0.01)  # PR #484's code
    assert eb < 0.01  # PR #484's text: |E g| / std g
    assert layer_snr([torch.randn(200_000) + 2.0])[0].item() == pytest.approx(2.0, rel=0.02)


def test_snr_scales_clip_and_scale_each_layers_own_gradients():
    model = _model()
    groups = layer_groups(model)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
        p.grad.view(-1)[::2] = -1.0  # zero-mean noise: SNR 0 under |E g| / std
    for p in model.blocks[0].parameters():
        p.grad.add_(10.0)  # a strong consistent signal in layer 0 only
    snr = GradientSNR(groups, 0.3, 3.0)
    snr.measure()
    scales = snr.scales("eb")
    assert scales["layer_00"] == 3.0 and scales["layer_01"] == 0.3
    before = model.blocks[1].mlp.fc.weight.grad.clone()
    scale_gradients(groups, scales)
    assert torch.equal(model.blocks[1].mlp.fc.weight.grad, before * 0.3)
    assert model.blocks[0].mlp.fc.weight.grad.view(-1)[1].item() == pytest.approx(11.0 * 3.0)
