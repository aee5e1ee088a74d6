"""Architecture registry: `arch.name` -> a builder taking the arch config.

Dispatch by name (not Hydra `_target_`) keeps configs short and stable across refactors. Every
published recipe is one configurable GPT: its preset (golf/conf/arch/<name>.yaml) only sets fields.
"""

from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass

from torch import nn

from golf.models.gpt import GPT

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


def register(*names: str):
    def wrap(builder):
        for name in names:
            ARCHITECTURES[name] = builder
        return builder

    return wrap


def arch_fields(arch) -> dict:
    """The arch fields as plain values (Enums by value). Accepts the typed ArchConfig, a mapping, or the
    namespace an artifact is rebuilt from; fields an older artifact lacks take the GPT defaults."""
    if is_dataclass(arch):
        fields = asdict(arch)
    else:
        fields = dict(arch) if isinstance(arch, Mapping) else dict(vars(arch))
    return {k: getattr(v, "value", v) for k, v in fields.items() if k != "name"}


@register("baseline", "swiglu_unet", "ebls", "xsa_bigram", "recur_parallel")
def build_gpt(arch) -> nn.Module:
    return GPT(**arch_fields(arch))


def build_model(arch) -> nn.Module:
    return ARCHITECTURES[arch.name](arch)
