"""The optimizer split: which tensors go to which optimizer, with which learning rate.

`muon_adam` reproduces the baseline exactly: Muon for 2-D block matrices; Adam for the token
embedding (tied LR when tied), for the untied head, and for every vector / control tensor
(attn_scale, mlp_scale, resid_mix, q_gain, skip_weights). Every param group carries `base_lr`,
which the LR schedule scales each step.
"""

import torch
from torch import nn

from golf.models.layers import is_control_tensor
from golf.optim.muon import Muon


def split_parameters(model: nn.Module) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """Named parameters by role; every trainable parameter lands in exactly one role."""
    roles = {"embed": [], "head": [], "matrix": [], "scalar": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name == "tok_emb.weight":
            roles["embed"].append((name, p))
        elif name == "lm_head.weight":
            roles["head"].append((name, p))
        elif name.startswith("blocks.") and p.ndim == 2 and not is_control_tensor(name):
            roles["matrix"].append((name, p))
        else:
            roles["scalar"].append((name, p))
    return roles


def _adam(params, lr: float, opt_cfg, fused: bool, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if weight_decay > 0 else torch.optim.Adam
    kwargs = dict(betas=(opt_cfg.beta1, opt_cfg.beta2), eps=opt_cfg.adam_eps, fused=fused)
    if weight_decay > 0:
        kwargs["weight_decay"] = weight_decay
    return cls([{"params": params, "lr": lr, "base_lr": lr}], **kwargs)


def build_optimizers(model: nn.Module, opt_cfg, tie_embeddings: bool, fused: bool) -> dict[str, torch.optim.Optimizer]:
    """Optimizers keyed by role, in the baseline's stepping order (embed, head, matrix, scalar)."""
    roles = split_parameters(model)
    params = {role: [p for _, p in named] for role, named in roles.items()}
    if opt_cfg.name.value == "adamw":
        everything = [p for role in ("embed", "head", "matrix", "scalar") for p in params[role]]
        return {"all": _adam(everything, opt_cfg.matrix_lr, opt_cfg, fused, opt_cfg.weight_decay)}
    optimizers = {}
    token_lr = opt_cfg.tied_embed_lr if tie_embeddings else opt_cfg.embed_lr
    optimizers["embed"] = _adam(params["embed"], token_lr, opt_cfg, fused)
    if params["head"]:
        optimizers["head"] = _adam(params["head"], opt_cfg.head_lr, opt_cfg, fused)
    muon = Muon(params["matrix"], lr=opt_cfg.matrix_lr, momentum=opt_cfg.muon_momentum,
                backend_steps=opt_cfg.muon_backend_steps)
    for group in muon.param_groups:
        group["base_lr"] = opt_cfg.matrix_lr
    optimizers["matrix"] = muon
    optimizers["scalar"] = _adam(params["scalar"], opt_cfg.scalar_lr, opt_cfg, fused)
    return optimizers
