"""No host syncs in the hot loops: between log steps and checkpoints the training loop never reads a tensor's
value on the host (on a GPU each read waits for every queued kernel), sliding eval reads only its result, TTT
reads once per chunk. Counted on CPU with a dispatch mode that sees every scalar read (`.item()`, `float(t)`,
`bool(t)`, `if t:`) and every op whose output size depends on values (boolean-mask indexing, nonzero)."""

import collections
import traceback

import pytest
import torch
from test_arch_presets import compose_config
from test_sliding_eval import _ctx, _model
from test_ttt_legality import _cfg, _tokens
from torch.utils._python_dispatch import TorchDispatchMode

from golf.checkpoint import Checkpointer
from golf.config.ttt import SNRScale
from golf.data.loader import DistributedTokenLoader
from golf.data.shard_writer import write_shard
from golf.eval.sliding import evaluate_sliding
from golf.job_trainer import JobTrainer
from golf.models.registry import build_model
from golf.optim.param_groups import build_optimizers
from golf.ttt import session
from golf.utils.runtime import Runtime

pytestmark = pytest.mark.usefixtures("single_thread")

aten = torch.ops.aten
# Value reads, and ops whose output size depends on the values (the host waits to learn it).
HOST_READS = {aten._local_scalar_dense.default, aten.is_nonzero.default, aten.nonzero.default,
              aten.masked_select.default}
RECIPE = ["arch=recur_parallel_cpu", "arch.recur_start_step=2", "train.ema_decay=0.9", "quant.qat_threshold=0.5",
          "optimizer.grad_clip_norm=0.3", "optimizer.muon_weight_decay=0.04", "optimizer.muon_row_norm=true",
          "optimizer.muon_coeffs=polar_express", "optimizer.muon_backend_steps=4", "train.warmdown_fraction=0.5"]


class ScalarReads(TorchDispatchMode):
    """Counts host reads of tensor values and value-sized results, by the line of golf code that asked.
    `Tensor.tolist()` reads without dispatching an op, so it is counted by wrapping it."""

    def __init__(self):
        super().__init__()
        self.by_line = collections.Counter()
        self.tolist = torch.Tensor.tolist

    def _count(self) -> None:
        golf_frames = [f for f in traceback.extract_stack() if "/golf/" in f.filename]
        self.by_line[f"{golf_frames[-1].filename}:{golf_frames[-1].lineno}" if golf_frames else "torch"] += 1

    def __enter__(self):
        def counted_tolist(tensor):
            self._count()
            return self.tolist(tensor)

        torch.Tensor.tolist = counted_tolist
        return super().__enter__()

    def __exit__(self, *exc):
        torch.Tensor.tolist = self.tolist
        return super().__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        bool_index = func is aten.index.Tensor and any(i is not None and i.dtype == torch.bool for i in args[1])
        if func in HOST_READS or bool_index:
            self._count()
        return func(*args, **(kwargs or {}))


class _Sink:
    def __init__(self):
        self.logged = []

    def log(self, step, metrics):
        self.logged.append(metrics)


def _reads_of_a_run(tmp_path, steps: int, overrides: list[str], sink=None) -> collections.Counter:
    cfg = compose_config(*overrides, f"train.iterations={steps}", "train.batch_tokens=512", "train.seq_len=64",
                         "train.grad_accum_steps=1", "train.warmup_steps=2", "train.val_every=0",
                         "train.log_every=0", *([] if sink is None else ["train.log_every=1000"]), "budget=unlimited")
    gen = torch.Generator().manual_seed(0)
    write_shard(tmp_path / "s_train_000000.bin", torch.randint(0, cfg.arch.vocab_size, (20_000,), generator=gen))
    rt = Runtime(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"), autocast_dtype=None, compile=False)
    torch.manual_seed(0)
    model = build_model(cfg.arch)
    optimizers = build_optimizers(model, cfg.optimizer, cfg.arch.tie_embeddings, fused=True)  # as on CUDA
    pattern = str(tmp_path / "s_train_*.bin")
    trainer = JobTrainer(model, model, optimizers, lambda: DistributedTokenLoader(pattern, 0, 1), cfg, rt, 1,
                         lambda step, ms: None, sink or _Sink(), Checkpointer(tmp_path / str(steps), "h" * 64, rt))
    trainer.warmup()
    with ScalarReads() as reads:
        trainer.run()
    return reads.by_line


@pytest.mark.parametrize("overrides", [["arch=tiny"], RECIPE], ids=["baseline", "recipe"])
def test_the_step_loop_reads_no_tensor_values(tmp_path, overrides):
    short, long = _reads_of_a_run(tmp_path, 3, overrides), _reads_of_a_run(tmp_path, 9, overrides)
    # The reads of the final checkpoint and the end of the run, the same however many steps ran before.
    assert long == short, f"reads that grow with the number of steps: {long - short}"
    assert sum(short.values()) <= 6, short


def test_gradient_snr_is_read_only_at_log_steps(tmp_path):
    """Steps 1-10 and the last one log (log_every=1000): 11 and 13 steps both log 11 times, so any read
    outside the log steps (the per-layer SNR of every step, say) makes the longer run read more."""
    sinks = [_Sink(), _Sink()]
    short, long = (_reads_of_a_run(tmp_path, n, RECIPE, sink) for n, sink in zip((11, 13), sinks))
    assert long == short, f"reads that grow with the number of steps: {long - short}"
    assert [len(sink.logged) for sink in sinks] == [11, 11]
    assert all(any(key.startswith("snr/eb_abs/layer_") for key in m) for m in sinks[1].logged)


def test_sliding_eval_reads_values_only_for_its_result():
    def reads(batch_seqs: int) -> collections.Counter:
        with ScalarReads() as counted:
            evaluate_sliding(_model(), _ctx(_tokens(), batch_seqs=batch_seqs, ledger=True), 16)
        return counted.by_line

    assert reads(1) == reads(32)  # 29 batches or 1


def test_ttt_reads_values_once_per_chunk_however_many_epochs():
    """SNR scales and losses stay on the device during a chunk's epochs and are read when the chunk ends."""
    def reads(epochs: int) -> collections.Counter:
        with ScalarReads() as counted:
            out = session.test_time_train(_model(), _ctx(_tokens()), _cfg(epochs=epochs, snr_scale=SNRScale.eb_abs), 32,
                                          0, diagnose=False)
        assert out["chunks"] == 4
        return counted.by_line

    one, five = reads(1), reads(5)
    assert five == one, f"reads that grow with the epochs: {five - one}"
