"""Sweep bundles (+sweep=NAME) compose to the documented grids, and W&B runs get the dashboard
keys (flat choices, seed, sweep and every override)."""

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


def test_wandb_config_has_flat_filter_keys_and_the_whole_config():
    cfg = _compose("+experiment=cpu_demo", "seed=42", "+sweep=ablate_ttt")
    choices = {"arch": "tiny", "ttt": "sgd", "quant": "int8_zlib", "optimizer": "muon_adam", "eval": "full",
               "data": "demo", "experiment": "cpu_demo", "budget": "cpu_smoke"}
    overrides = ["+experiment=cpu_demo", "seed=42", "ttt=sgd", "ttt.lr=0.02", "arch.model_dim=128", "~ttt.compile"]
    config = wandb_config(cfg, {"arch": {"model_dim": 128}, "ttt": {"lr": 0.02}},
                          {"choices": choices, "overrides": overrides})
    assert {k: config[k] for k in ("arch", "ttt", "quant", "seed", "sweep", "experiment")} == {
        "arch": "tiny", "ttt": "sgd", "quant": "int8_zlib", "seed": 42, "sweep": "ablate_ttt", "experiment": "cpu_demo"}
    # every override a top-level key, typed as in the config; dots would read as nesting in W&B
    assert (config["ttt/lr"], config["arch/model_dim"], config["overrides"]) == (0.02, 128, overrides)
    assert config["golf"] == {"arch": {"model_dim": 128}, "ttt": {"lr": 0.02}} and "budget" not in config
