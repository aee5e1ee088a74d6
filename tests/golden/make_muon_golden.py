"""Regenerate tests/golden/muon_official.json from the official training script (run by hand, never by the tests).

    python tests/golden/make_muon_golden.py PATH/TO/train_gpt.py

The script is the baseline `train_gpt.py` of openai/parameter-golf. Its `zeropower_via_newtonschulz5` and
`Muon` are loaded from that file and run on fixed inputs; the JSON keeps the inputs and the outputs, so
tests/test_muon_golden.py checks golf's Muon against the official numbers without the official script.
"""

import importlib.util
import json
import math
import sys
from pathlib import Path

import torch

OUT = Path(__file__).with_name("muon_official.json")
STEPS = 5  # the baseline's muon_backend_steps
SHAPES = {"wide": (8, 16), "tall": (16, 8), "square": (12, 12)}
LR, MOMENTUM = 0.04, 0.95


def matrix(rows: int, cols: int, phase: float) -> torch.Tensor:
    """A fixed, full-rank, unevenly scaled test matrix written as a formula (no RNG, so no torch version drift)."""
    return torch.tensor([[math.sin(phase + 1.7 * i + 0.31 * j * j) * (1.0 + 0.25 * i) for j in range(cols)]
                         for i in range(rows)], dtype=torch.float32)


def load_official(path: str):
    spec = importlib.util.spec_from_file_location("official_train_gpt", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(path: str) -> None:
    official = load_official(path)
    golden = {"steps": STEPS, "orthogonalize": {}, "muon": {"lr": LR, "momentum": MOMENTUM, "params": {}}}
    for name, (rows, cols) in SHAPES.items():
        g = matrix(rows, cols, phase=0.5)
        out = official.zeropower_via_newtonschulz5(g, steps=STEPS)
        golden["orthogonalize"][name] = {"input": g.tolist(), "output": out.float().tolist()}
    params = {name: torch.nn.Parameter(matrix(rows, cols, phase=2.0) * 0.1) for name, (rows, cols) in SHAPES.items()}
    opt = official.Muon(list(params.values()), lr=LR, momentum=MOMENTUM, backend_steps=STEPS, nesterov=True)
    record = {name: {"initial": p.detach().tolist(), "grads": [], "after": []} for name, p in params.items()}
    for step in range(2):
        for name, p in params.items():
            p.grad = matrix(*p.shape, phase=3.0 + step)
            record[name]["grads"].append(p.grad.tolist())
        opt.step()
        for name, p in params.items():
            record[name]["after"].append(p.detach().tolist())
    golden["muon"]["params"] = record
    OUT.write_text(json.dumps(golden) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    main(sys.argv[1])
