"""Weight averaging: the averaged weights, not the last ones, are evaluated and exported.

- EMA (`train.ema_decay` = d > 0): an fp32 shadow of every floating-point tensor of the state
  dict, `ema = d * ema + (1 - d) * theta` after every optimizer step, starting from the weights
  training starts with (the init weights, after the compile warmup restored them).
- SWA (`train.swa_every` = k > 0): the uniform mean of snapshots taken after every k-th step
  whose LR multiplier was below `train.swa_below` ("tight SWA"). The published stacks accumulate
  it and never load it; here it is loaded. With no snapshot at all (the LR never fell below the
  threshold) the final weights stay, and the summary says so.

Both keep their state on the model's device with foreach ops (no host sync per step) and are
saved in training checkpoints, so a resumed run averages exactly what an uninterrupted one would.
The config validation refuses both at once.
"""

import logging

import torch
from torch import nn

log = logging.getLogger(__name__)


class _Average:
    """Shared plumbing: the live floating-point tensors of the model and the running state."""

    def __init__(self, model: nn.Module):
        self.model = model
        # Views of the parameters and buffers: in-place loads (checkpoint restore) keep them valid.
        self.live = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
        self.state = {k: v.detach().float().clone() for k, v in self.live.items()}
        self.count = 0

    def _live_fp32(self) -> list[torch.Tensor]:
        return [t.float() for t in self.live.values()]

    def _load(self, averaged: dict[str, torch.Tensor]) -> None:
        # Integer buffers cannot be averaged: they keep their current values.
        self.model.load_state_dict({**self.model.state_dict(), **averaged}, strict=True)

    def state_dict(self) -> dict:
        return {"state": self.state, "count": self.count}

    def load_state_dict(self, saved: dict) -> None:
        if saved["state"].keys() != self.state.keys():
            raise ValueError(f"averaging state holds {sorted(saved['state'])}, the model has {sorted(self.state)}")
        for key, tensor in self.state.items():
            tensor.copy_(saved["state"][key])
        self.count = int(saved["count"])


class EMA(_Average):
    def __init__(self, model: nn.Module, decay: float):
        super().__init__(model)
        self.decay = decay

    @torch.no_grad()
    def update(self, step: int, lr_mul: float) -> None:
        shadow = list(self.state.values())
        torch._foreach_mul_(shadow, self.decay)
        torch._foreach_add_(shadow, self._live_fp32(), alpha=1.0 - self.decay)
        self.count += 1

    def apply(self) -> None:
        self._load(self.state)
        log.info(f"averaging: EMA (decay {self.decay}, {self.count} updates) loaded into the model")

    def summary(self) -> dict:
        return {"method": "ema", "applied": True, "decay": self.decay, "updates": self.count}


class SWA(_Average):
    def __init__(self, model: nn.Module, every: int, below: float):
        super().__init__(model)
        self.every, self.below = every, below
        torch._foreach_zero_(list(self.state.values()))  # a running sum of snapshots

    @torch.no_grad()
    def update(self, step: int, lr_mul: float) -> None:
        if step % self.every == 0 and lr_mul < self.below:
            torch._foreach_add_(list(self.state.values()), self._live_fp32())
            self.count += 1

    def apply(self) -> None:
        if self.count == 0:
            log.warning(f"averaging: SWA took no snapshot (lr_mul never fell below {self.below} on a multiple of "
                        f"{self.every} steps); the final weights are kept")
            return
        self._load({k: v / self.count for k, v in self.state.items()})
        log.info(f"averaging: SWA of {self.count} snapshots (every {self.every} steps once lr_mul < {self.below}) "
                 f"loaded into the model")

    def summary(self) -> dict:
        return {"method": "swa", "applied": self.count > 0, "every": self.every, "below": self.below,
                "snapshots": self.count}


def make_averager(model: nn.Module, train_cfg) -> EMA | SWA | None:
    """The averaging `train.*` selects, started from the model's current weights; None when off."""
    if train_cfg.ema_decay > 0:
        return EMA(model, train_cfg.ema_decay)
    if train_cfg.swa_every > 0:
        return SWA(model, train_cfg.swa_every, train_cfg.swa_below)
    return None
