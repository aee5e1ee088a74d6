"""golf's training arithmetic, pinned: speed work on the model and Muon must not change a single bit.

Two guards. (1) A golden list of the per-step losses and the final weights' sum of a fixed tiny run (model,
forward, backward, Muon, Adam; fp32 and bf16 storage + autocast), stored as exact float hex. CPUs differ in
the last bits of their float kernels, so the list is exact on the machine kind it was recorded on (the CPU
model and torch version below) and checked to 1e-4 elsewhere. (2) The official script's model and Muon (loaded
by path, benchmarks.reference) trained side by side with golf's from the same seed: identical losses and
weights, bit for bit, on any machine.
"""

import pytest
import torch

from benchmarks.reference import find_reference, load_reference, official_model, official_optimizers
from golf.config.arch import ArchConfig
from golf.config.optimizer import OptimizerConfig
from golf.models.layers import apply_baseline_precision
from golf.models.registry import build_model
from golf.optim.param_groups import build_optimizers
from golf.utils.environment import cpu_model

pytestmark = pytest.mark.usefixtures("single_thread")

ARCH = ArchConfig(num_layers=2, model_dim=64, num_heads=4, num_kv_heads=2)
STEPS, BATCH, SEQ = 6, 4, 32
RECORDED_ON = ("AMD EPYC", "2.13.0+cpu")
GOLDEN_LOSSES = {  # recorded at d6eefc4, before the speed work
    "fp32": ["0x1.bc49e20000000p+2", "0x1.cbf1e20000000p+2", "0x1.0599180000000p+3", "0x1.e234f20000000p+2",
             "0x1.f655160000000p+2", "0x1.ec08f40000000p+2", "0x1.8bffa4dfe4450p+8"],
    "bf16": ["0x1.bc49440000000p+2", "0x1.cc001e0000000p+2", "0x1.066ee20000000p+3", "0x1.e2b2bc0000000p+2",
             "0x1.f6076a0000000p+2", "0x1.eb9ef80000000p+2", "0x1.8fb5efaf9af60p+8"],
}


def _batches() -> torch.Tensor:
    return torch.randint(0, ARCH.vocab_size, (STEPS, BATCH, SEQ + 1), generator=torch.Generator().manual_seed(7))


def _train(model, optimizers: list, bf16: bool) -> list[float]:
    losses = []
    for tokens in _batches():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(tokens[:, :-1], tokens[:, 1:])
        loss.backward()
        for opt in optimizers:
            opt.step()
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


def _golf(bf16: bool):
    torch.manual_seed(1337)
    model = build_model(ARCH)
    if bf16:
        apply_baseline_precision(model)
    return model, list(build_optimizers(model, OptimizerConfig(), ARCH.tie_embeddings, fused=False).values())


def _weight_sum(model) -> float:
    """Every weight summed in float64: the last step's update, which no loss shows yet."""
    return sum(p.detach().double().sum() for p in model.parameters()).item()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_golf_losses_match_the_golden_list(precision):
    model, optimizers = _golf(precision == "bf16")
    losses = [*_train(model, optimizers, bf16=precision == "bf16"), _weight_sum(model)]
    golden = [float.fromhex(h) for h in GOLDEN_LOSSES[precision]]
    if (cpu_model(), torch.__version__) == RECORDED_ON:
        assert [v.hex() for v in losses] == GOLDEN_LOSSES[precision]
    else:
        assert losses == pytest.approx(golden, rel=1e-4)


@pytest.fixture(scope="module")
def reference():
    path = find_reference()
    if path is None or not path.is_file():
        pytest.skip("no official train_gpt.py: set $GOLF_REFERENCE or copy it to .reference/")
    return load_reference(path)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_golf_trains_bit_for_bit_like_the_official_model_and_muon(reference, precision):
    """Same seed -> same weights -> same losses and updates. Adam is torch's on both sides (unfused, golf's CPU
    choice; the official main() fuses it, whose rounding differs)."""
    bf16 = precision == "bf16"
    golf_model, golf_optimizers = _golf(bf16)
    torch.manual_seed(1337)
    official = official_model(reference, ARCH, bf16)
    pairs = list(zip(golf_model.state_dict().values(), official.state_dict().values(), strict=True))
    assert all(torch.equal(a, b) and a.dtype == b.dtype for a, b in pairs)
    optimizers = official_optimizers(reference, official, OptimizerConfig(), ARCH.tie_embeddings,
                                              fused=False)
    golf_losses = _train(golf_model, golf_optimizers, bf16)
    official_losses = _train(official, optimizers, bf16)
    assert [v.hex() for v in golf_losses] == [v.hex() for v in official_losses]
    assert all(torch.equal(a, b) for a, b in zip(golf_model.state_dict().values(), official.state_dict().values(),
                                                 strict=True))
