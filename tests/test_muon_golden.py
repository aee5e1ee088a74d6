"""golf's Muon against golden numbers of the official implementation (tests/golden/muon_official.json,
written once by tests/golden/make_muon_golden.py from the official training script's own functions).

The tolerances allow a couple of bf16 rounding steps (a different CPU may round a matmul differently);
a wrong Newton-Schulz coefficient, momentum rule or shape scale moves the numbers by ~10x more.
"""

import json
from pathlib import Path

import pytest
import torch

from golf.optim.muon import NS5_COEFFS, Muon, newton_schulz5

GOLDEN = json.loads((Path(__file__).parent / "golden" / "muon_official.json").read_text(encoding="utf-8"))
BF16_SLACK = 2e-2  # outputs are O(0.5); one bf16 step there is 2^-9..2^-8


def test_newton_schulz_coefficients_are_the_official_ones():
    assert NS5_COEFFS == (3.4445, -4.7750, 2.0315)


@pytest.mark.parametrize("shape", sorted(GOLDEN["orthogonalize"]))
def test_orthogonalization_matches_the_official_iteration(shape):
    case = GOLDEN["orthogonalize"][shape]
    out = newton_schulz5(torch.tensor(case["input"]), steps=GOLDEN["steps"])
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), torch.tensor(case["output"]), rtol=0.0, atol=BF16_SLACK)


def test_two_muon_steps_match_the_official_optimizer():
    """Nesterov momentum, orthogonalization and the sqrt(rows / cols) scale of a tall matrix, over two steps
    so the momentum buffer counts."""
    m = GOLDEN["muon"]
    cases = m["params"]
    params = {name: torch.nn.Parameter(torch.tensor(case["initial"])) for name, case in cases.items()}
    opt = Muon(list(params.values()), lr=m["lr"], momentum=m["momentum"], backend_steps=GOLDEN["steps"])
    for step in range(2):
        before = {name: p.detach().clone() for name, p in params.items()}
        for name, p in params.items():
            p.grad = torch.tensor(cases[name]["grads"][step])
        opt.step()
        for name, p in params.items():
            previous = torch.tensor(cases[name]["after"][step - 1]) if step else torch.tensor(cases[name]["initial"])
            expected_update = torch.tensor(cases[name]["after"][step]) - previous
            torch.testing.assert_close(p.detach() - before[name], expected_update, rtol=0.0, atol=m["lr"] * BF16_SLACK)
