"""Per-row LoRA adapters: row b of a batch goes through its own low-rank paths x -> (x A_b^T) B_b^T.

A path is added to the output of every module whose name matches the targets (forward hooks): on a Linear it
is LoRA on its weight ((W + B A) x = W x + B A x); on an attention or MLP module, a path around the whole
module, where the records put their O and MLP adapters. With `head`, one more path goes from the final
hidden states to the raw logits (before the soft cap). B starts at zero, so fresh adapters change nothing.
"""

import contextlib
import math
import re

import torch
from torch import nn

from golf.errors import ConfigError
from golf.models.layer_groups import LayerGroup, layer_groups

HEAD = "head"


class BatchedAdapters(nn.Module):
    def __init__(self, model: nn.Module, targets: str, rank: int, rows: int, head: bool):
        super().__init__()
        shapes = _io_features(model, re.compile(targets))
        if not shapes:
            raise ConfigError(f"ttt.lora_targets={targets!r} matched no module",
                              fix="use a regex on module names such as 'attn\\.(c_q|c_v)$'")
        device = next(model.parameters()).device
        self.names, self.rows, self.head = list(shapes), rows, head
        self.active = True
        if head:
            vocab, dim = model.tok_emb.weight.shape
            shapes[HEAD] = (dim, vocab)
        self.a = nn.ParameterList([nn.Parameter(torch.empty(rows, rank, i, device=device)) for i, _ in shapes.values()])
        self.b = nn.ParameterList([nn.Parameter(torch.zeros(rows, o, rank, device=device)) for _, o in shapes.values()])
        modules = dict(model.named_modules())
        self.handles = [modules[name].register_forward_hook(self._hook(i)) for i, name in enumerate(self.names)]

    def delta(self, i: int, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.a[i].transpose(1, 2).to(x.dtype)) @ self.b[i].transpose(1, 2).to(x.dtype)

    def _hook(self, i: int):
        def add_path(module, args, out):
            if not self.active:
                return out
            if isinstance(out, tuple):  # attention returns (output, values)
                return (out[0] + self.delta(i, args[0]), *out[1:])
            return out + self.delta(i, args[0])

        return add_path

    def reset(self, row_seeds: list[int]) -> None:
        """Fresh adapters: row r's A drawn after seeding with row_seeds[r], in target order, as the unbatched
        protocol drew one document's; B = 0. Rows past the seeds are padding: their loss weight is 0."""
        with torch.no_grad():
            for row, seed in enumerate(row_seeds):
                torch.manual_seed(seed)
                for a in self.a:
                    nn.init.kaiming_uniform_(a[row], a=math.sqrt(5))
            for a in self.a:  # padding rows: no path and zero gradients (never torch.empty's leftovers, maybe NaN)
                a[len(row_seeds) :].zero_()
            for b in self.b:
                b.zero_()

    @contextlib.contextmanager
    def paused(self):
        """The model without the adapters' paths (phased TTT's global step trains the base weights alone)."""
        self.active = False
        try:
            yield
        finally:
            self.active = True

    def logits(self, model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
        """The model's logits with every row's paths (ids: one row per adapter row, or fewer)."""
        head = len(self.names)
        return model.logits(ids, (lambda hidden: self.delta(head, hidden)) if self.head else None)

    def layer_groups(self, model: nn.Module) -> list[LayerGroup]:
        """The adapters grouped by the model layer of the module they adapt (the head's in its own group), for the
        per-layer gradient SNR. The SNR is taken over whole batch tensors: rows with nothing to train at a step
        (a shorter document's end, padding) add zero gradients."""
        owner = {id(p): g.key for g in layer_groups(model) for p in g.params}
        modules = dict(model.named_modules())
        keys = [owner.get(id(next(modules[n].parameters(), None)), n.split(".")[0]) for n in self.names]
        keys += [HEAD] * self.head
        groups: dict[str, LayerGroup] = {}
        for key, a, b in zip(keys, self.a, self.b):
            groups.setdefault(key, LayerGroup(key, [])).params += [a, b]
        return list(groups.values())

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _io_features(model: nn.Module, pattern: re.Pattern) -> dict[str, tuple[int, int]]:
    """name -> (input, output) feature sizes of the matched modules in module order, from one tiny forward."""
    shapes, handles = {}, []
    names = [name for name, _ in model.named_modules() if name and pattern.search(name)]
    modules = dict(model.named_modules())
    for name in names:
        def record(m, args, out, name=name):
            shapes[name] = (args[0].shape[-1], (out[0] if isinstance(out, tuple) else out).shape[-1])
        handles.append(modules[name].register_forward_hook(record))
    with torch.no_grad():
        model.hidden_states(torch.zeros(1, 2, dtype=torch.int64, device=next(model.parameters()).device))
    for handle in handles:
        handle.remove()
    return {name: shapes[name] for name in names if name in shapes}
