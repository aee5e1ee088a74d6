"""Full-size parameter counts of the presets against the published ones (built on the meta device).

| preset | published | source |
|---|---|---|
| baseline | 17,059,912 | openai/parameter-golf 2026-03-17_NaiveBaseline |
| swiglu_unet | ~33.4M (PR text); 33,425,496 | PR #462's model instantiated (docs/techniques.md#swiglu_unet-and-pr462) |
| ebls | 29,566,018 | PR #484 first commit, train_seed42.log `model_params` |
| xsa_bigram with BigramHash 2048x128 | 26,993,756 | resouer/parameter-golf PR #6 (its file's bigram size) |
| xsa_bigram (3072x112, PR #1019's size) | none; ours 27,067,484 | |
| recur_parallel, vocab 8192 | 36,311,132 | PR #1550 |
"""

import pytest
import torch
from test_arch_presets import compose_config

from golf.models.registry import build_model


def _count(*overrides: str) -> int:
    arch = compose_config(*overrides).arch
    with torch.device("meta"):
        model = build_model(arch)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("overrides, published", [
    (["arch=baseline"], 17_059_912),
    (["arch=swiglu_unet"], 33_425_496),
    (["arch=ebls"], 29_566_018),
    (["arch=xsa_bigram", "arch.bigram_buckets=2048", "arch.bigram_dim=128"], 26_993_756),
    (["arch=recur_parallel", "data=fineweb_sp8192"], 36_311_132),
])
def test_full_size_parameter_counts_match_the_published_ones(overrides, published):
    assert _count(*overrides) == published


def test_our_xsa_bigram_preset_and_its_bigram_table():
    # 3072 x 112 table + its 512 x 112 projection replace 2048 x 128 + 512 x 128.
    assert _count("arch=xsa_bigram") == 26_993_756 - (2048 + 512) * 128 + (3072 + 512) * 112 == 27_067_484


def test_recurrence_and_two_lane_residuals_add_almost_no_parameters():
    full = _count("arch=recur_parallel", "data=fineweb_sp8192")
    assert _count("arch=recur_parallel", "data=fineweb_sp8192", "arch.recur_layers=[]") == full
    assert _count("arch=recur_parallel", "data=fineweb_sp8192", "arch.parallel_residual=none") == full - 1  # lane_merge


def test_true_swiglu_switch_costs_one_more_matrix_per_layer():
    star = _count("arch=swiglu_unet")
    # + gate [1792, 512] per layer, - the Star-ReLU scale and bias vectors (2 x 1792).
    assert _count("arch=swiglu_unet", "arch.mlp=swiglu") == star + 11 * (1792 * 512 - 2 * 1792)
