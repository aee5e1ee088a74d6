"""What sets one ablation cell apart: a job's settings (its group choices and command-line overrides), the
keys a sweep varies, and how golf writes them (report groups, W&B job types, run names, tags, config keys)."""

from hydra.core.override_parser.overrides_parser import OverridesParser

# Overrides that say where or how a job ran, not what it computed.
NOT_SETTINGS = ("seed", "paths", "hydra", "logger", "sweep_name", "run_name", "sweep", "launcher", "resume")


def override_key(override: str) -> str:
    """`+experiment=cpu_demo` -> `experiment`, `train.lr=0.1` -> `train.lr`."""
    return override.partition("=")[0].lstrip("+~")


def setting_key(override: str) -> tuple[str, str] | None:
    key, sep, value = override.partition("=")
    key = key.lstrip("+~")
    if not sep or key.split(".")[0].split("/")[0] in NOT_SETTINGS:
        return None
    return key, value


def job_settings(choices: dict, overrides: list[str]) -> dict[str, str]:
    """The group choices and command-line overrides that define what a job computed (never its seed)."""
    settings = {k: str(v) for k, v in (choices or {}).items() if k.split("/")[0] not in NOT_SETTINGS}
    settings.update(kv for kv in map(setting_key, overrides or []) if kv is not None)
    return settings


def label(settings: dict, keys: list[str]) -> str:
    """`k=v k2=v2` over `keys`: the name of an ablation cell."""
    return " ".join(f"{k}={settings.get(k, '-')}" for k in keys)


def swept_keys(overrides: list[str]) -> list[str]:
    """Keys a multirun sweeps (`seed=1,2`, `ttt=glob(*)`, `lr=range(...)`), in order; a later plain value of
    the same key (the command line after a bundle's params) ends its sweep, as it does in Hydra's sweeper."""
    swept: dict[str, bool] = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        swept[override.key_or_group] = override.is_sweep_override()
    return [key for key, sweeps in swept.items() if sweeps]


def flat_key(key: str) -> str:
    """A W&B config key for an override: W&B reads dots in config keys as nesting, so `train.lr` is
    `train/lr` (top level, next to the group choices, whose names it would otherwise collide with)."""
    return key.replace(".", "/")
