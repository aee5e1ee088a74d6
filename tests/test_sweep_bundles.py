"""Sweep bundles (+sweep=NAME) compose to the documented grids, and W&B runs get the dashboard
keys (flat choices and seed, grouped by sweep)."""

import json

import pytest
from hydra import compose, initialize
from omegaconf import OmegaConf

from golf.config.compose import register_schemas
from golf.logging.sinks import wandb_config

register_schemas()


def _compose(*overrides: str):
    with initialize(version_base="1.3", config_path="../golf/conf"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize("bundle, axis", [("seeds3", None), ("ablate_ttt", "ttt"), ("ablate_quant", "quant"),
                                          ("ablate_arch", "arch")])
def test_bundles_sweep_every_option_of_their_axis_over_three_seeds(bundle, axis):
    cfg = _compose(f"+sweep={bundle}")
    params = OmegaConf.to_container(cfg.hydra.sweeper.params)
    assert params.pop("seed") == "1337,42,2025" and cfg.sweep_name == bundle
    assert params == ({} if axis is None else {axis: "glob(*)"})


def test_wandb_config_has_flat_filter_keys_and_the_whole_config(tmp_path):
    cfg = _compose("+experiment=cpu_demo", "seed=42", "+sweep=ablate_ttt")
    choices = {"arch": "tiny", "ttt": "sgd", "quant": "int8_zlib", "optimizer": "muon_adam", "eval": "full",
               "data": "demo", "experiment": "cpu_demo", "budget": "cpu_smoke"}
    (tmp_path / "results.json").write_text(json.dumps({"choices": choices}))
    config = wandb_config(tmp_path, cfg, {"arch": {"model_dim": 128}})
    assert {k: config[k] for k in ("arch", "ttt", "quant", "seed", "sweep", "experiment")} == {
        "arch": "tiny", "ttt": "sgd", "quant": "int8_zlib", "seed": 42, "sweep": "ablate_ttt", "experiment": "cpu_demo"}
    assert config["golf"] == {"arch": {"model_dim": 128}} and "budget" not in config
