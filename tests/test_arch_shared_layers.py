"""Per-layer groups (golf.models.layer_groups) on shared-weight architectures: EBLS shared blocks and
depth recurrence. Freezing or a zero LR for one virtual layer must reach exactly that layer's tensors."""

import pytest
import torch
from test_arch_components import VOCAB, noisy, tiny

from golf.config.ttt import LayerLR, TTTConfig
from golf.models.layer_groups import layer_groups
from golf.ttt.training import apply_lr_policy, build_optimizer, select_trainable

pytestmark = pytest.mark.usefixtures("single_thread")


def _ebls():
    return noisy(tiny(num_layers=6, ebls_blocks=2, ebls_rank=4))  # 2 shared blocks x 3 virtual layers


def test_ebls_groups_shared_blocks_once_and_every_virtual_layer_alone():
    model = _ebls()
    groups = layer_groups(model)
    layers = [(g.key, g.depths) for g in groups if g.depths]
    assert layers == [("layer_00", [0, 1, 2]), ("layer_01", [3, 4, 5])] + [(f"virtual_{k:02d}", [k]) for k in range(6)]
    # A shared block's weights are one group: the very tensors of the block, serving three depths.
    assert [id(p) for p in groups[0].params] == [id(p) for p in model.blocks[0].parameters()]
    assert [id(p) for p in groups[2 + 4].params] == [id(p) for p in model.virtual_layers[4].parameters()]
    ids = [id(p) for g in groups for p in g.params]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))


def test_a_shared_block_runs_once_per_depth_it_serves():
    model = _ebls()
    calls = []
    model.blocks[0].attn.register_forward_hook(lambda *_: calls.append(0))
    model.blocks[1].attn.register_forward_hook(lambda *_: calls.append(1))
    ids = torch.randint(0, VOCAB, (2, 8))
    model(ids, ids).backward()
    assert calls == [0, 0, 0, 1, 1, 1]
    assert model.blocks[0].attn.c_q.weight.grad.abs().sum() > 0


def _step(model, cfg: TTTConfig) -> dict[str, torch.Tensor]:
    """One TTT optimizer step through golf.ttt.training; returns the weights before it."""
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = build_optimizer(select_trainable(model, cfg), cfg)
    ids = torch.randint(0, VOCAB, (2, 8), generator=torch.Generator().manual_seed(0))
    model(ids[:, :-1], ids[:, 1:]).backward()
    opt.step()
    return before


def _changed(model, before) -> set[str]:
    return {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}


def test_zero_lr_for_one_virtual_layer_changes_exactly_that_layers_tensors():
    model = _ebls()
    cfg = TTTConfig(layer_lr=LayerLR.multipliers, lr_multipliers=[1.0, 1.0, 1.0, 1.0, 0.0, 1.0], lr=0.05)
    before = _step(model, cfg)
    unchanged = set(before) - _changed(model, before)
    assert unchanged == {n for n in before if n.startswith("virtual_layers.4.")}
    # The shared block serving depths 3-5 still trains, at the mean multiplier 2/3.
    groups = layer_groups(model)
    apply_lr_policy(groups, "multipliers", cfg.lr_multipliers, 0)
    assert [g.lr_mult for g in groups[:2]] == pytest.approx([1.0, 2 / 3])
    assert [g.lr_mult for g in groups[2:8]] == [1.0, 1.0, 1.0, 1.0, 0.0, 1.0]


def test_freezing_one_virtual_layer_changes_exactly_that_layers_tensors():
    model = _ebls()
    [group] = [g for g in layer_groups(model) if g.key == "virtual_02"]
    cfg = TTTConfig(lr=0.05, freeze_pattern=r"^virtual_layers\.2\.")
    before = _step(model, cfg)
    unchanged = set(before) - _changed(model, before)
    assert unchanged == {n for n in before if n.startswith("virtual_layers.2.")}
    assert all(not p.requires_grad for p in group.params)
    # freeze_blocks=1 freezes depth 0: its own virtual layer and the shared block that serves it.
    model = _ebls()
    before = _step(model, TTTConfig(lr=0.05, freeze_blocks=1))
    unchanged = set(before) - _changed(model, before)
    assert unchanged == {n for n in before if n.startswith(("virtual_layers.0.", "blocks.0."))}


def test_recurrence_groups_follow_the_virtual_order():
    model = tiny(num_layers=5, recur_layers=[1, 2], recur_start_step=10)
    groups = [(g.key, g.depths) for g in layer_groups(model) if g.depths]
    assert groups == [("layer_00", [0]), ("layer_01", [1, 3]), ("layer_02", [2, 4]), ("layer_03", [5]),
                      ("layer_04", [6])]
    model.on_train_step(0)  # before recur_start_step: one pass per block
    assert [g.depths for g in layer_groups(model) if g.depths] == [[0], [1], [2], [3], [4]]
