"""What a parameter is: the one place that gives parameter names a meaning.

Each component declares the role of its own parameters next to its definition (a `PARAM_ROLES` class
attribute: local name -> Role), and `parameter_roles(model)` collects them under their full names. The
optimizer split (golf.optim.param_groups), the quantizers (golf.quant), bf16 storage (golf.models.layers),
the orthogonal init (golf.models.orthogonal_init) and TTT freezing (golf.ttt.training) all read roles from
here, so a new component touches only its own module: nothing matches names elsewhere. The roles below are the
baseline's; an option's component defines its own next to it (BigramHash, value embeddings, SparseAttnGate, EBLS,
Star-ReLU), so a record carries only the roles of its model.

The seeds disagree on where the side tables go (PR #462 steps the BigramHash table with the scalars and
quantizes it int6 with the blocks; PR #1550 steps the value-embedding projection with the scalars and
quantizes its table like the other int8 tensors), so those roles carry a `side` name and a preset moves
them with `optimizer.<side>_group` / `quant.<side>_category` (passed as `optimizer=` / `quant=` below).
"""

from dataclasses import dataclass, replace

from torch import nn


@dataclass(frozen=True)
class Role:
    group: str  # optimizer group: "embed" (token tables, Adam at the embedding LR), "head", "matrix" (Muon), "scalar"
    quant: str  # quantization category: "embed", "attn", "mlp", "other" or "gate" (bits per category: quant.bits_*)
    control: bool = False  # per-channel control tensor: stored fp32, never quantized, never cast to bf16
    embedding: bool = False  # the vocabulary side (token embedding, output head, BigramHash): ttt.freeze_embeddings
    side: str = ""  # a side table's tensor whose group / category a preset may move (see the module docstring)


TOKEN_EMBEDDING = Role("embed", "embed", embedding=True)
OUTPUT_HEAD = Role("head", "embed", embedding=True)
ATTN_MATRIX = Role("matrix", "attn")
MLP_MATRIX = Role("matrix", "mlp")
CONTROL = Role("scalar", "other", control=True)


def preset_moves(optimizer=None, quant=None) -> dict[str, dict[str, str]]:
    """side -> the Role fields a config moves it to (optimizer group, quant category)."""
    moves: dict[str, dict[str, str]] = {}
    if optimizer is not None:
        moves.setdefault("bigram_table", {})["group"] = str(optimizer.bigram_table_group)
        moves.setdefault("value_embed_proj", {})["group"] = str(optimizer.value_embed_proj_group)
    if quant is not None:
        moves.setdefault("bigram_table", {})["quant"] = str(quant.bigram_table_category)
        moves.setdefault("value_embed_table", {})["quant"] = str(quant.value_embed_table_category)
    return moves


def parameter_roles(model: nn.Module, optimizer=None, quant=None) -> dict[str, Role]:
    """Full parameter name -> Role for every parameter of `model`; an undeclared parameter is an error.
    With an optimizer / quant config, side tables take the group / category that config gives them."""
    names = {name for name, _ in model.named_parameters()}
    moves = preset_moves(optimizer, quant)
    roles = {}
    for prefix, module in model.named_modules():
        for local, role in getattr(module, "PARAM_ROLES", {}).items():
            name = f"{prefix}.{local}" if prefix else local
            if name in names:
                roles[name] = replace(role, **moves.get(role.side, {}))
    missing = sorted(names - roles.keys())
    if missing:
        raise ValueError(f"parameters without a declared role: {missing[:5]}; declare them in the owning "
                         f"module's PARAM_ROLES (golf/models/roles.py)")
    return roles


def control_names(model: nn.Module) -> set[str]:
    """Names of the control tensors (kept fp32 and unquantized by every export)."""
    return {name for name, role in parameter_roles(model).items() if role.control}
