"""Late quantization-aware training: fake-quantize CastedLinear weights once the LR has decayed.

The forward sees the weights the export will store (per-row symmetric N-bit, fp16 row-max scales,
the same grid as `quant.clip=percentile` at 100, floored at 1/qmax with `quant.scale_floor`); the
backward passes the gradient straight through (STE), or, with `quant.qat_soft_tau > 0` once lr_mul <
`quant.qat_soft_below`, through a soft rounding that knows where each weight sits inside its bin. The
switch is an int attribute of each layer (`qat_bits`): torch.compile guards on it, so flipping it
recompiles instead of being constant-folded away (tests/test_quant_qat.py checks this under torch.compile).
"""

import logging

from torch import nn

from golf.models.fake_quant import fake_quant
from golf.models.layers import CastedLinear
from golf.models.roles import parameter_roles
from golf.quant.intn import FLOAT_BITS, bits_by_category

log = logging.getLogger(__name__)


def quantized_layers(model: nn.Module, quant) -> list[tuple[CastedLinear, int]]:
    """Every CastedLinear the export quantizes, with its bits."""
    bits = bits_by_category(quant)
    roles = parameter_roles(model, quant=quant)
    layers = []
    for name, module in model.named_modules():
        role = roles.get(f"{name}.weight")
        if (isinstance(module, CastedLinear) and not role.control
                and module.weight.numel() > quant.keep_float_max_numel):
            b = 8 if quant.scheme == "int8" else bits[role.quant]
            if b != FLOAT_BITS:
                layers.append((module, b))
    return layers


def fake_quantize(module: CastedLinear, bits: int, floor: bool) -> None:
    """From now on `module`'s training forwards see its weights on the `bits` grid."""
    module.qat_bits, module.qat_floor, module.fake_quant = bits, floor, fake_quant


def set_fake_quant(model: nn.Module, quant, on: bool) -> None:
    """Hard fake quantization of every quantized layer on (the export's grid) or off: what pre-quant TTT
    runs under (`ttt.qat`), whatever state training left the layers in."""
    for module in model.modules():
        if isinstance(module, CastedLinear):
            module.qat_bits, module.qat_tau, module.qat_floor = 0, 0.0, False
    if on:
        for module, b in quantized_layers(model, quant):
            fake_quantize(module, b, quant.scale_floor)


class LateQAT:
    """Turns fake quantization on in every quantized CastedLinear when lr_mul drops below the threshold."""

    def __init__(self, model: nn.Module, quant):
        self.layers = quantized_layers(model, quant)
        self.floor = quant.scale_floor
        self.threshold = quant.qat_threshold
        self.soft_tau, self.soft_below = quant.qat_soft_tau, quant.qat_soft_below
        self.active = self.soft = False

    def update(self, step: int, lr_mul: float) -> None:
        if not self.active and lr_mul < self.threshold:
            self.active = True
            for module, b in self.layers:
                fake_quantize(module, b, self.floor)
            log.info(f"qat: on at step {step} (lr_mul {lr_mul:.3f} < {self.threshold}) for {len(self.layers)} layers")
        if self.active and not self.soft and self.soft_tau > 0 and lr_mul < self.soft_below:
            self.soft = True
            for module, _ in self.layers:
                module.qat_tau = self.soft_tau
            log.info(f"qat: soft rounding (tau {self.soft_tau}) from step {step}")
