"""Per-layer gradient signal-to-noise ratio, measured in training (at log steps) and in TTT (every step,
where `ttt.snr_scale` also scales each layer's gradient by it).

Two estimators over a layer's flattened gradient g (PR #484): `eb` = |E[g]| / std(g), what its text
describes (over a whole layer the mean entry is ~0, so it sits under any useful floor), and `eb_abs` =
mean(|g|) / std(g), what its code computed, with the sample std as there: sqrt(2/pi) ~ 0.8 for Gaussian
entries, lower for a layer whose gradient is concentrated in a few large entries (sparse rows, outliers),
so the scales differ across layers. Each is kept raw and clipped to [snr_min, snr_max], the scale TTT
applies. Layers are golf.models.layer_groups groups, so a shared block is measured once. Values stay on
the device until they are logged: measuring never makes the host wait.
"""

import torch

from golf.models.layer_groups import LayerGroup

SNR_EPS = 1e-8
ESTIMATORS = ("eb", "eb_abs")
SERIES = (*ESTIMATORS, *(f"{e}_clipped" for e in ESTIMATORS))  # the order of a layer's value vector


def layer_snr(grads: list[torch.Tensor]) -> torch.Tensor:
    """[eb, eb_abs] of one layer's gradients taken together, on their device."""
    g = torch.cat([t.detach().float().reshape(-1) for t in grads])
    std = g.std(correction=1 if g.numel() > 1 else 0) + SNR_EPS
    return torch.stack([g.mean().abs(), g.abs().mean()]) / std


class GradientSNR:
    """The SNR series of every layer with a gradient, the last measurement and the mean over measurements."""

    def __init__(self, groups: list[LayerGroup], snr_min: float, snr_max: float):
        self.groups = groups
        self.clip = (snr_min, snr_max)
        self.last: dict[str, torch.Tensor] = {}  # layer -> values in SERIES order
        self.total: dict[str, torch.Tensor] = {}
        self.count: dict[str, int] = {}

    def measure(self) -> None:
        for g in self.groups:
            grads = [p.grad for p in g.params if p.requires_grad and p.grad is not None]
            if not grads:
                continue  # frozen, or unused by the forward so far (a layer switched on at a later step)
            raw = layer_snr(grads)
            self.last[g.key] = torch.cat([raw, raw.clamp(*self.clip)])
            self.total[g.key] = self.total.get(g.key, 0) + self.last[g.key].double()
            self.count[g.key] = self.count.get(g.key, 0) + 1

    @property
    def steps(self) -> int:
        return max(self.count.values(), default=0)

    def scales(self, estimator: str) -> dict[str, torch.Tensor]:
        """The last clipped values of `estimator`, per layer: the factors scale_gradients applies."""
        column = SERIES.index(f"{estimator}_clipped")
        return {key: values[column] for key, values in self.last.items()}

    def metrics(self, prefix: str) -> dict[str, float]:
        """`<prefix>/<series>/<layer>` of the last measurement, read back in one transfer."""
        return {f"{prefix}/{series}/{key}": value for key, row in _read(self.last).items()
                for series, value in zip(SERIES, row)}

    def summary(self) -> dict:
        """For results.json: per series, the last and the mean value of every layer."""
        last = _read(self.last)
        mean = {key: [v / self.count[key] for v in row] for key, row in _read(self.total).items()}
        return {"steps": self.steps, "clip": list(self.clip), "estimators": list(ESTIMATORS),
                "final": {s: {key: row[i] for key, row in last.items()} for i, s in enumerate(SERIES)},
                "mean": {s: {key: row[i] for key, row in mean.items()} for i, s in enumerate(SERIES)}}


def _read(values: dict[str, torch.Tensor]) -> dict[str, list[float]]:
    if not values:
        return {}
    rows = torch.stack([v.double() for v in values.values()]).tolist()
    return dict(zip(values, rows))


def scale_gradients(groups: list[LayerGroup], scales: dict[str, torch.Tensor]) -> None:
    for g in groups:
        if g.key in scales:
            for p in g.params:
                if p.requires_grad and p.grad is not None:
                    p.grad.mul_(scales[g.key])
