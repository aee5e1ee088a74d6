"""Progress with ETA on the long steps: drawn on rank 0's terminal, silent in logs and on other ranks."""

import io
from types import SimpleNamespace

import pytest
import torch
from test_sliding_eval import _ctx, _model

from golf.eval.full import evaluate_full
from golf.eval.sliding import evaluate_sliding
from golf.logging import progress as progress_module
from golf.logging.progress import Progress

pytestmark = pytest.mark.usefixtures("single_thread")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal(monkeypatch) -> Terminal:
    stream = Terminal()
    # the module's view of sys (pytest's capture swaps sys.stderr itself between setup and call)
    monkeypatch.setattr(progress_module, "sys", SimpleNamespace(stderr=stream))
    monkeypatch.setattr(progress_module, "REDRAW_SECONDS", 0.0)  # draw on every update
    return stream


def _tokens(n: int = 64 * 10 + 1) -> torch.Tensor:
    return torch.randint(2, 64, (n,), generator=torch.Generator().manual_seed(0))


def test_full_eval_counts_its_batches_to_the_end(terminal):
    evaluate_full(_model(), _ctx(_tokens(), batch_seqs=3))  # 10 sequences in batches of 3
    lines = terminal.getvalue().split("\r")[1:]
    assert [line.split(" batches")[0] for line in lines] == [f"eval: {i}/4" for i in range(1, 5)]
    assert "(100%)" in lines[-1] and "ETA 0:00" in lines[-1] and terminal.getvalue().endswith("\n")


def test_sliding_eval_counts_its_windows(terminal):
    evaluate_sliding(_model(), _ctx(_tokens(), batch_seqs=4), 32)
    last = terminal.getvalue().split("\r")[-1]
    assert last.startswith("sliding eval (stride 32): 19/19 windows (100%)")


def test_silent_when_not_a_terminal_and_on_other_ranks(terminal, monkeypatch):
    evaluate_full(_model(), _ctx(_tokens(), batch_seqs=3, rank=1, world_size=2))
    assert terminal.getvalue() == ""
    log = io.StringIO()
    with Progress(5, "eval", stream=log) as bar:
        bar.update(5)
    assert log.getvalue() == ""


def test_eta_follows_the_measured_rate(monkeypatch):
    clock = iter([100.0, 102.0])  # constructed at t=100; 2 of 10 done at t=102
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: next(clock))
    stream = Terminal()
    bar = Progress(10, "ttt sgd", "chunks", stream=stream)
    bar.update(2)
    assert stream.getvalue() == "\rttt sgd: 2/10 chunks (20%), 1.0 chunks/s, elapsed 0:02, ETA 0:08  "
