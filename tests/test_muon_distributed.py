"""Muon under torch.distributed: two gloo processes, each orthogonalizing its share of the matrices,
end with exactly the weights one process computes alone."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from golf.optim.muon import Muon

SHAPES = [(32, 16), (16, 48), (24, 24), (8, 40), (40, 8)]  # odd count and unequal sizes: padded shards


def _params() -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(*s, generator=gen)) for s in SHAPES]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    return params


def _steps(params) -> list[torch.Tensor]:
    opt = Muon(params, lr=0.05, momentum=0.9, backend_steps=5, weight_decay=0.1)
    for _ in range(3):
        opt.step()
    return [p.detach().clone() for p in params]


def _rank(rank: int, port: int, out: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        out[rank] = _steps(_params())
    finally:
        dist.destroy_process_group()


def test_two_ranks_apply_every_update_like_one_process():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_rank, args=(port, out), nprocs=2)
        results = dict(out)
    alone = _steps(_params())
    for rank in (0, 1):
        assert all(torch.equal(a, b) for a, b in zip(results[rank], alone)), rank
