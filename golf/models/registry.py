"""Architecture registry: `arch.name` -> a builder taking the typed arch config, and rebuilding a model
from an artifact file.

Dispatch by name (not Hydra `_target_`) keeps configs short and stable across refactors. Every
published recipe is one configurable GPT: its preset (golf/conf/arch/<name>.yaml) only sets fields.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from golf.artifact.container import unpack
from golf.models.gpt import GPT
from golf.models.layers import apply_baseline_precision

if TYPE_CHECKING:  # a record's script carries its config as a plain namespace
    from golf.config.arch import ArchConfig

ARCHITECTURES: dict[str, Callable[[ArchConfig], nn.Module]] = {}


def register(*names: str):
    def wrap(builder):
        for name in names:
            ARCHITECTURES[name] = builder
        return builder

    return wrap


register("baseline", "swiglu_unet", "ebls", "xsa_bigram", "recur_parallel", "frontier")(GPT)


def build_model(arch: ArchConfig) -> nn.Module:
    return ARCHITECTURES[arch.name](arch)


def load_model(path: Path, device: torch.device, autocast_dtype: torch.dtype | None = None, *,
               arch_type: Callable[..., ArchConfig]) -> nn.Module:
    """Rebuild the model from the artifact file alone (the official round trip) in the state training left it
    (golf.artifact.container step_state), ready to score: on `device`, with the baseline's bf16 storage
    dtypes when it will run under bf16 autocast. `arch_type(**fields)` holds the artifact's arch fields: golf
    passes ArchConfig (fields an older artifact lacks take their defaults), a record's script the plain
    namespace its config is made of."""
    contents = unpack(Path(path).read_bytes(), source=str(path))
    model = build_model(arch_type(**contents.arch))
    model.load_state_dict(contents.weights, strict=True)
    model.load_step_state(contents.step_state)
    if autocast_dtype == torch.bfloat16:
        apply_baseline_precision(model)
    return model.to(device)
