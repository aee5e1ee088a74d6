"""Muon under torch.distributed: two gloo processes, each orthogonalizing its share of the matrices,
end with exactly the weights one process computes alone."""

import torch
from conftest import on_two_gloo_ranks

from golf.optim.muon_options import MuonWithOptions

SHAPES = [(32, 16), (16, 48), (24, 24), (8, 40), (40, 8)]  # odd count and unequal sizes: padded shards


def _params() -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(*s, generator=gen)) for s in SHAPES]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    return params


def _steps(params) -> list[torch.Tensor]:
    opt = MuonWithOptions(params, lr=0.05, momentum=0.9, backend_steps=5, weight_decay=0.1)
    for _ in range(3):
        opt.step()
    return [p.detach().clone() for p in params]


def _rank_steps(rank: int) -> list[torch.Tensor]:
    return _steps(_params())


def test_two_ranks_apply_every_update_like_one_process():
    results = on_two_gloo_ranks(_rank_steps)
    alone = _steps(_params())
    for rank in (0, 1):
        assert all(torch.equal(a, b) for a, b in zip(results[rank], alone)), rank
