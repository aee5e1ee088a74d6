"""The GPU path's compilation, checked on CPU: every preset traces as one graph (runs compile with fullgraph, so a
graph break would stop a CUDA run at its first step) and computes what eager mode computes; inductor turns the
soft-capped cross-entropy into one fused kernel each way; a sequential sweep can compile any number of models."""

import re

import pytest
import torch
from test_arch_presets import PRESETS, compose_config, preset_model
from torch._inductor.utils import run_and_get_code

import golf.utils.compile as compilation
from golf.models.registry import build_model
from golf.utils.compile import compile_model

pytestmark = pytest.mark.usefixtures("single_thread")


def _baseline(*overrides: str):
    torch.manual_seed(0)
    return build_model(compose_config("arch=tiny", "arch.num_layers=2", *overrides).arch)


def _ids(model, seed: int) -> torch.Tensor:
    return torch.randint(0, model.tok_emb.num_embeddings, (2, 64), generator=torch.Generator().manual_seed(seed))


def _loss_and_grads(runner, model, ids, autocast: bool = False):
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = runner(ids, ids)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16"])
@pytest.mark.parametrize("name", ["baseline", *PRESETS])
def test_every_preset_compiles_as_one_graph_and_matches_eager(name, autocast, monkeypatch):
    monkeypatch.setattr(compilation, "BACKEND", "eager")  # dynamo's tracing alone: fast, and exact
    model = _baseline() if name == "baseline" else preset_model(name)[0]
    model.on_train_step(10**6, 1.0)  # recurrence and other step- or fraction-triggered parts switched on
    ids = _ids(model, 1)
    loss, grads = _loss_and_grads(compile_model(model), model, ids, autocast)
    eager_loss, eager_grads = _loss_and_grads(model, model, ids, autocast)
    torch.testing.assert_close(loss, eager_loss, rtol=0, atol=0)
    assert grads.keys() == eager_grads.keys() and len(grads) == sum(p.requires_grad for p in model.parameters())
    for key, grad in grads.items():
        torch.testing.assert_close(grad, eager_grads[key], rtol=0, atol=0, msg=key)


def test_a_sequential_sweep_compiles_more_models_than_the_recompile_limit(monkeypatch):
    """The jobs of `-m arch.model_dim=...` under Hydra's basic launcher share one process."""
    monkeypatch.setattr(compilation, "BACKEND", "eager")
    widths = [16 * (i + 1) for i in range(torch._dynamo.config.recompile_limit + 1)]
    for width in widths:
        model = _baseline(f"arch.model_dim={width}", "arch.num_heads=1", "arch.num_kv_heads=1")
        loss, _ = _loss_and_grads(compile_model(model), model, _ids(model, width))
        assert torch.isfinite(loss)


def _kernel_names(sources: list[str]) -> set[str]:
    return set(re.findall(r"\b(?:cpp|triton)_\w*fused_\w+", "\n".join(sources)))


def test_inductor_fuses_the_softcapped_cross_entropy_into_one_kernel_each_way():
    model = _baseline()
    ids = _ids(model, 2)
    runner = compile_model(model)  # the real backend, as on a GPU (C++ kernels here instead of Triton)
    (loss, grads), sources = run_and_get_code(lambda: _loss_and_grads(runner, model, ids))
    eager_loss, eager_grads = _loss_and_grads(model, model, ids)
    torch.testing.assert_close(loss, eager_loss)
    for key, grad in grads.items():
        torch.testing.assert_close(grad, eager_grads[key], msg=key)
    names = _kernel_names(sources)
    # tanh soft-cap, fp32 log-softmax and the NLL in one forward kernel, nowhere else; their gradients in one
    # backward kernel (other backward kernels may recompute the NLL's ignore mask)
    forward = [n for n in names if all(op in n for op in ("tanh", "_log_softmax", "nll_loss_forward"))
               and "backward" not in n]
    backward = [n for n in names if all(op in n for op in ("tanh_backward", "_log_softmax_backward",
                                                            "nll_loss_backward"))]
    assert len(forward) == 1 and len(backward) == 1, sorted(names)
    assert [n for n in names if "tanh" in n and "backward" not in n] == forward, sorted(names)
