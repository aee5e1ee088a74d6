"""Late QAT: the fake quantizer matches the export grid, the switch flips under torch.compile."""

import pytest
import torch
import torch.nn.functional as F

from golf.config.arch import ArchConfig
from golf.config.quant import QuantConfig, QuantScheme
from golf.models.fake_quant import fake_quant
from golf.models.layers import CastedLinear
from golf.models.registry import build_model
from golf.quant.intn import percentile_scales, round_rows
from golf.quant.qat import LateQAT, fake_quantize

pytestmark = pytest.mark.usefixtures("single_thread")


def test_fake_quant_is_the_export_grid_with_a_straight_through_gradient():
    torch.manual_seed(0)
    w = (torch.randn(24, 40) * 0.05).requires_grad_()
    s = percentile_scales(w.detach(), 6, 100.0)
    assert torch.equal(fake_quant(w, 6).detach(), round_rows(w.detach(), s, 6) * s[:, None])
    x = torch.randn(8, 40)
    F.linear(x, fake_quant(w, 6)).square().sum().backward()
    ste_grad = w.grad.clone()
    w.grad = None
    wq = fake_quant(w, 6).detach().requires_grad_()
    F.linear(x, wq).square().sum().backward()
    assert torch.allclose(ste_grad, wq.grad)  # identity through the rounding
    w.grad = None
    F.linear(x, fake_quant(w, 6, tau=0.1)).square().sum().backward()
    assert torch.equal(fake_quant(w, 6, tau=0.1).detach(), fake_quant(w, 6).detach())  # same forward
    assert not torch.allclose(w.grad, ste_grad)  # bin-aware backward


def test_switch_takes_effect_under_torch_compile():
    torch.manual_seed(0)
    layer = CastedLinear(32, 48, bias=False)
    compiled = torch.compile(layer, fullgraph=True, dynamic=False, backend="aot_eager")
    x = torch.randn(4, 32)
    before = compiled(x)
    assert torch.equal(before, F.linear(x, layer.weight))
    fake_quantize(layer, 4, floor=False)  # what LateQAT does mid-training
    after = compiled(x)
    assert torch.allclose(after, F.linear(x, fake_quant(layer.weight, 4)), atol=1e-6)
    assert not torch.allclose(after, before, atol=1e-3)
    layer.eval()  # evaluation never fake-quantizes
    assert torch.equal(compiled(x), F.linear(x, layer.weight))


def test_late_qat_turns_on_below_the_threshold_with_category_bits():
    arch = ArchConfig(name="baseline", vocab_size=1024, num_layers=2, model_dim=64, num_heads=2, num_kv_heads=1)
    model = build_model(arch)
    quant = QuantConfig(scheme=QuantScheme.intn, bits_attn=6, bits_mlp=5, keep_float_max_numel=1024,
                        qat_threshold=0.15, qat_soft_tau=0.1, qat_soft_below=0.02)
    qat = LateQAT(model, quant)
    qat.update(0, 1.0)
    assert not qat.active and all(m.qat_bits == 0 for m, _ in qat.layers)
    qat.update(90, 0.1)
    bits = {n: m.qat_bits for n, m in model.named_modules() if isinstance(m, CastedLinear)}
    assert bits["blocks.0.mlp.fc"] == 5 and bits["blocks.1.attn.c_q"] == 6 and qat.active and not qat.soft
    qat.update(99, 0.01)
    assert qat.soft and model.blocks[0].mlp.fc.qat_tau == 0.1
