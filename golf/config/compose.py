"""The Hydra side of golf's config: the schema registration and composing outside `@hydra.main`.

`golf.train` composes through `@hydra.main`; the tools that start from a finished job (golf.ttt,
golf.quant), the benchmarks and the tests compose here, from the same config dir and schema.
"""

from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import DictConfig, OmegaConf

from golf.config.schema import GolfConfig
from golf.errors import ConfigError

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def register_schemas() -> None:
    ConfigStore.instance().store(name="golf_schema", node=GolfConfig)


def compose(overrides: list[str], hydra_runtime: bool = False) -> DictConfig:
    """The config `python -m golf.train <overrides>` composes. With `hydra_runtime`, `${hydra:...}`
    interpolations (the run name) resolve as they do under `@hydra.main`, and the hydra node is dropped."""
    register_schemas()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose("config", overrides=overrides, return_hydra_config=hydra_runtime)
    except (MissingConfigException, ConfigCompositionException) as exc:  # an unknown option or group
        raise ConfigError(f"{str(exc).splitlines()[0]} (the options are the files in golf/conf/<group>/)") from None
    if hydra_runtime:
        HydraConfig.instance().set_config(cfg)
        del cfg.hydra
    return cfg


def typed(node) -> GolfConfig:
    """A resolved config (DictConfig or plain dict) checked against the schema and made typed."""
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(GolfConfig), node))
