"""What a parameter is: the one place that gives parameter names a meaning.

Each component declares the role of its own parameters next to its definition (a `PARAM_ROLES` class
attribute: local name -> Role), and `parameter_roles(model)` collects them under their full names. The
optimizer split (golf.optim.param_groups), the quantizers (golf.quant), bf16 storage (golf.models.layers)
and TTT freezing (golf.ttt.training) all read roles from here, so a new component touches only its own
module: nothing matches names elsewhere.
"""

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class Role:
    group: str  # optimizer group: "embed" (token tables, Adam at the embedding LR), "head", "matrix" (Muon), "scalar"
    quant: str  # quantization category: "embed", "attn", "mlp", "other" or "gate" (bits per category: quant.bits_*)
    control: bool = False  # per-channel control tensor: stored fp32, never quantized, never cast to bf16
    token_table: bool = False  # a token embedding or output head: frozen by ttt.freeze_embeddings


TOKEN_EMBEDDING = Role("embed", "embed", token_table=True)
OUTPUT_HEAD = Role("head", "embed", token_table=True)
SIDE_TABLE = Role("embed", "embed")  # BigramHash / value-embedding tables: the token embedding's group
ATTN_MATRIX = Role("matrix", "attn")
MLP_MATRIX = Role("matrix", "mlp")
PROJECTION = Role("matrix", "other")  # a side table's projection to the model width
MLP_VECTOR = Role("scalar", "mlp")
BYPASS_MATRIX = Role("scalar", "other")  # EBLS low-rank bypasses: Adam, quantized as "other"
CONTROL = Role("scalar", "other", control=True)
# SparseAttnGate's per-head weights: Adam like a control tensor, but a category of their own so the export
# can store them at quant.bits_gate (int8 in the records) whatever their size.
ATTN_GATE = Role("scalar", "gate")


def parameter_roles(model: nn.Module) -> dict[str, Role]:
    """Full parameter name -> Role for every parameter of `model`; an undeclared parameter is an error."""
    names = {name for name, _ in model.named_parameters()}
    roles = {}
    for prefix, module in model.named_modules():
        for local, role in getattr(module, "PARAM_ROLES", {}).items():
            name = f"{prefix}.{local}" if prefix else local
            if name in names:
                roles[name] = role
    missing = sorted(names - roles.keys())
    if missing:
        raise ValueError(f"parameters without a declared role: {missing[:5]}; declare them in the owning "
                         f"module's PARAM_ROLES (golf/models/roles.py)")
    return roles


def control_names(model: nn.Module) -> set[str]:
    """Names of the control tensors (kept fp32 and unquantized by every export)."""
    return {name for name, role in parameter_roles(model).items() if role.control}


def quant_categories(model: nn.Module) -> dict[str, str]:
    """Parameter name -> quantization category."""
    return {name: role.quant for name, role in parameter_roles(model).items()}
