"""Architecture registry: `arch.name` -> a builder taking the arch config.

Dispatch by name (not Hydra `_target_`) keeps configs short and stable across refactors.
"""

from collections.abc import Callable

from torch import nn

from golf.models.gpt import GPT

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    def wrap(builder):
        ARCHITECTURES[name] = builder
        return builder

    return wrap


@register("baseline")
def build_baseline(arch) -> nn.Module:
    return GPT(
        vocab_size=arch.vocab_size,
        num_layers=arch.num_layers,
        model_dim=arch.model_dim,
        num_heads=arch.num_heads,
        num_kv_heads=arch.num_kv_heads,
        mlp_mult=arch.mlp_mult,
        tie_embeddings=arch.tie_embeddings,
        tied_embed_init_std=arch.tied_embed_init_std,
        logit_softcap=arch.logit_softcap,
        rope_base=arch.rope_base,
        qk_gain_init=arch.qk_gain_init,
    )


def build_model(arch) -> nn.Module:
    return ARCHITECTURES[arch.name](arch)
