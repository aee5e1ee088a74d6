"""The optimizer split: which tensors go to which optimizer, with which learning rate.

`muon_adam` reproduces the baseline exactly: Muon for 2-D block matrices; Adam for the token
embedding (tied LR when tied), for the untied head, and for every vector / control tensor
(attn_scale, mlp_scale, resid_mix, q_gain, skip_weights). Every param group carries `base_lr`,
which the LR schedule scales each step. Options: AdamW decay for the embedding and the scalars,
Muon's own options (golf.optim.muon_options), and PR #462's decoder LR multiplier, a second param group
per optimizer for the tensors of the decoder half of `model.blocks`.
"""

import torch
from torch import nn

from golf.models.roles import parameter_roles
from golf.optim.muon import Muon


def split_parameters(model: nn.Module, opt_cfg=None) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """Trainable named parameters by optimizer group (golf.models.roles: embed, head, matrix, scalar),
    in the model's parameter order; `opt_cfg` places the side tables (optimizer.*_group)."""
    roles = parameter_roles(model, optimizer=opt_cfg)
    groups = {"embed": [], "head": [], "matrix": [], "scalar": []}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups[roles[name].group].append((name, p))
    return groups


def _lr_groups(params: list, lr: float, decoder_ids: set[int] = frozenset(), decoder_mult: float = 1.0) -> list[dict]:
    """One param group at `lr`, plus one at `lr * decoder_mult` holding the tensors in `decoder_ids`."""
    groups = [{"params": [p for p in params if id(p) not in decoder_ids], "lr": lr, "base_lr": lr},
              {"params": [p for p in params if id(p) in decoder_ids], "lr": lr * decoder_mult,
               "base_lr": lr * decoder_mult}]
    return [g for g in groups if g["params"]] or groups[:1]


def _adam(groups: list[dict], opt_cfg, fused: bool, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam, or AdamW when `weight_decay` > 0 (so a zero decay is exactly the baseline's Adam)."""
    cls = torch.optim.AdamW if weight_decay > 0 else torch.optim.Adam
    kwargs = dict(betas=(opt_cfg.beta1, opt_cfg.beta2), eps=opt_cfg.adam_eps, fused=fused)
    if weight_decay > 0:
        kwargs["weight_decay"] = weight_decay
    return cls(groups, **kwargs)


def build_optimizers(model: nn.Module, opt_cfg, tie_embeddings: bool, fused: bool,
                     compiled: bool = False) -> dict[str, torch.optim.Optimizer]:
    """Optimizers keyed by role, in the baseline's stepping order (embed, head, matrix, scalar).

    `compiled` compiles Muon's Newton-Schulz iteration (the run's train.compile decision).
    """
    params = {group: [p for _, p in named] for group, named in split_parameters(model, opt_cfg).items()}
    if opt_cfg.name == "adamw":
        everything = [p for role in ("embed", "head", "matrix", "scalar") for p in params[role]]
        return {"all": _adam(_lr_groups(everything, opt_cfg.matrix_lr), opt_cfg, fused,
                             opt_cfg.weight_decay)}
    mult = opt_cfg.decoder_lr_mult
    decoder_ids = set()
    if mult != 1.0:  # imported when used, so a record embeds only what its config runs
        from golf.optim.decoder_lr import decoder_tensor_ids

        decoder_ids = decoder_tensor_ids(model)
    optimizers = {}
    token_lr = opt_cfg.tied_embed_lr if tie_embeddings else opt_cfg.embed_lr
    optimizers["embed"] = _adam(_lr_groups(params["embed"], token_lr), opt_cfg, fused,
                                opt_cfg.embed_weight_decay)
    if params["head"]:
        optimizers["head"] = _adam(_lr_groups(params["head"], opt_cfg.head_lr), opt_cfg, fused)
    muon, options = Muon, {}
    if opt_cfg.muon_row_norm or opt_cfg.muon_weight_decay > 0 or opt_cfg.muon_coeffs != "ns5":
        from golf.optim.muon_options import MuonWithOptions  # imported when used, as above

        muon, options = MuonWithOptions, dict(
            coeffs=opt_cfg.muon_coeffs, row_norm=opt_cfg.muon_row_norm, row_norm_axis=opt_cfg.muon_row_norm_axis,
            pe_safety=opt_cfg.muon_pe_safety, weight_decay=opt_cfg.muon_weight_decay, wd_order=opt_cfg.muon_wd_order)
    optimizers["matrix"] = muon(_lr_groups(params["matrix"], opt_cfg.matrix_lr, decoder_ids, mult),
                                lr=opt_cfg.matrix_lr, momentum=opt_cfg.muon_momentum,
                                backend_steps=opt_cfg.muon_backend_steps, compiled=compiled, **options)
    optimizers["scalar"] = _adam(_lr_groups(params["scalar"], opt_cfg.scalar_lr, decoder_ids, mult), opt_cfg, fused,
                                 opt_cfg.scalar_weight_decay)
    return optimizers
