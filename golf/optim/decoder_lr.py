"""PR #462's decoder LR multiplier (`optimizer.decoder_lr_mult`): which tensors belong to the decoder half."""

from torch import nn

from golf.errors import ConfigError


def decoder_tensor_ids(model: nn.Module) -> set[int]:
    """ids of the tensors of the decoder half, `model.blocks[len(model.blocks) // 2:]` (PR #462).

    Found by module identity, so a tensor registered under another name (a shared or banked
    weight handed to a block) is found too; a tensor that an encoder block also uses is not
    decoder-only and keeps the base LR.
    """
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleList):
        raise ConfigError(f"optimizer.decoder_lr_mult needs a model whose physical blocks are `model.blocks` "
                          f"(an nn.ModuleList); {type(model).__name__} has none", fix="set optimizer.decoder_lr_mult=1")
    half = len(blocks) // 2
    encoder = {id(p) for block in blocks[:half] for p in block.parameters()}
    return {id(p) for block in blocks[half:] for p in block.parameters() if id(p) not in encoder}
