"""The optimizer config (`optimizer`): Muon for matrices, Adam(W) for the rest, and their options."""

from dataclasses import dataclass

from golf.config.choice import Choice


class OptimizerName(Choice):
    muon_adam = "muon_adam"
    adamw = "adamw"


class MuonCoeffs(Choice):
    ns5 = "ns5"  # the baseline quintic (3.4445, -4.7750, 2.0315) at every step
    polar_express = "polar_express"  # per-step Polar Express coefficients (PR #1550), at most 5 steps


class RowNormAxis(Choice):
    rows = "rows"  # each row of the update as it is (the MuonEq-R paper, the 04-09 record)
    transposed = "transposed"  # rows after a tall matrix is transposed to wide, i.e. its columns (PR #1550)


class SideGroup(Choice):
    """The optimizer group a side table's tensor steps in (golf.models.roles)."""

    embed = "embed"  # Adam(W) at the token-embedding LR
    matrix = "matrix"  # Muon
    scalar = "scalar"  # Adam(W) at the scalar LR


class WeightDecayOrder(Choice):
    before = "before"  # W *= 1 - lr*wd, then the update (the baseline-derived stacks)
    after = "after"  # the update, then W *= 1 - lr*wd (PR #462)


@dataclass
class OptimizerConfig:
    name: OptimizerName = OptimizerName.muon_adam
    tied_embed_lr: float = 0.05
    embed_lr: float = 0.6
    head_lr: float = 0.008
    matrix_lr: float = 0.04
    scalar_lr: float = 0.04
    beta1: float = 0.9
    beta2: float = 0.95
    adam_eps: float = 1e-8
    weight_decay: float = 0.0
    muon_momentum: float = 0.95
    muon_momentum_warmup_start: float = 0.85
    muon_momentum_warmup_steps: int = 500
    muon_backend_steps: int = 5
    muon_coeffs: MuonCoeffs = MuonCoeffs.ns5
    muon_row_norm: bool = False  # MuonEq-R: each row of the update divided by its L2 norm before orthogonalizing
    muon_row_norm_axis: RowNormAxis = RowNormAxis.rows
    muon_pe_safety: float = 1.02  # polar_express: the update is divided by this x its norm (PR #1550: 1.0)
    muon_weight_decay: float = 0.0  # decoupled W *= 1 - lr*wd on Muon matrices; 0: off
    muon_wd_order: WeightDecayOrder = WeightDecayOrder.before
    embed_weight_decay: float = 0.0  # > 0: the token embedding steps with AdamW at this decay (else Adam)
    scalar_weight_decay: float = 0.0  # > 0: vectors / control tensors step with AdamW at this decay (else Adam)
    decoder_lr_mult: float = 1.0  # matrix and scalar LR multiplier for tensors of blocks[num_blocks//2:] (PR #462: 2)
    grad_clip_norm: float = 0.0
    bigram_table_group: SideGroup = SideGroup.embed  # PR #462: scalar
    value_embed_proj_group: SideGroup = SideGroup.matrix  # PR #1550: scalar
