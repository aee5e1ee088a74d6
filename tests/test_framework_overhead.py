"""golf's training loop does no work a hand-written loop would not: per step, the Trainer dispatches exactly the
ops of the benchmark's plain loop (benchmarks.throughput.plain_steps) plus a fixed handful of scalar-sized ones
(the loss sum, the NaN watch) and views (slicing a batch out of the loader's copy), the same handful for a
4-layer and an 11-layer model. Counted on CPU with a dispatch mode over runs of two lengths, so what the runs
share (warm-up, the final checkpoint) cancels. On a GPU each of those ops is one tiny kernel launch; this is why
golf/plain in benchmarks.throughput should read 1.00 up to the loader's host work and timing noise."""

import collections

import pytest
import torch
from test_arch_presets import compose_config
from test_host_sync import _Sink
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from benchmarks.throughput import plain_steps
from golf.checkpoint import Checkpointer
from golf.data.loader import DistributedTokenLoader
from golf.data.shard_writer import write_shard
from golf.job_trainer import JobTrainer
from golf.models.registry import build_model
from golf.optim.param_groups import build_optimizers
from golf.utils.runtime import Runtime

pytestmark = pytest.mark.usefixtures("single_thread")

RT = Runtime(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"), autocast_dtype=None, compile=False)
ACCUM = 2
CONFIGS = {"baseline 4 layers": ["arch=tiny"],
           "recur_parallel 11 layers": ["arch=recur_parallel_cpu", "arch.recur_start_step=0"]}
NO_AUTOCAST = dict(device_type="cpu", enabled=False)


def _kind(func, out) -> str:
    """'view' for an op that only reinterprets its input, 'scalar' when every result has at most one element
    (in-place results too), else 'work'."""
    if func.is_view:
        return "view"
    return "scalar" if all(t.numel() <= 1 for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)) else "work"


class DispatchedOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.counts = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.counts[(_kind(func, out), str(func))] += 1
        return out


def _setup(tmp_path, overrides: list[str], steps: int):
    cfg = compose_config(*overrides, f"train.iterations={steps}", "train.batch_tokens=256", "train.seq_len=64",
                         f"train.grad_accum_steps={ACCUM}", "train.warmup_steps=1", "train.val_every=0",
                         "train.log_every=0", "budget=unlimited")
    shard = tmp_path / "s_train_000000.bin"
    if not shard.exists():
        write_shard(shard, torch.randint(0, cfg.arch.vocab_size, (20_000,), generator=torch.Generator().manual_seed(0)))
    torch.manual_seed(0)
    model = build_model(cfg.arch)
    optimizers = build_optimizers(model, cfg.optimizer, cfg.arch.tie_embeddings, fused=True)  # as on CUDA
    return cfg, model, optimizers, lambda: DistributedTokenLoader(str(tmp_path / "s_train_*.bin"), 0, 1)


def _golf_ops(tmp_path, overrides, steps) -> collections.Counter:
    cfg, model, optimizers, make_loader = _setup(tmp_path, overrides, steps)
    trainer = JobTrainer(model, model, optimizers, make_loader, cfg, RT, ACCUM, lambda step, ms: None, _Sink(),
                         Checkpointer(tmp_path / f"golf{steps}", "h" * 64, RT))
    trainer.warmup()
    with DispatchedOps() as ops:
        trainer.run()
    return ops.counts


def _plain_ops(tmp_path, overrides, steps) -> collections.Counter:
    cfg, model, optimizers, make_loader = _setup(tmp_path, overrides, steps)
    loader = make_loader()
    batches = [[loader.next_batch(cfg.train.batch_tokens, cfg.train.seq_len, ACCUM) for _ in range(ACCUM)]
               for _ in range(steps)]
    with DispatchedOps() as ops:
        plain_steps(model, model, optimizers, batches, NO_AUTOCAST, range(steps))
    return ops.counts


def _per_step(count, tmp_path, overrides) -> collections.Counter:
    short, long = count(tmp_path, overrides, 1), count(tmp_path, overrides, 3)
    long.subtract(short)
    assert all(n % 2 == 0 for n in long.values()), long
    return collections.Counter({key: n // 2 for key, n in long.items() if n})


def _framework_extra(tmp_path, overrides) -> collections.Counter:
    golf, plain = _per_step(_golf_ops, tmp_path, overrides), _per_step(_plain_ops, tmp_path, overrides)
    golf_work = {key: n for key, n in golf.items() if key[0] == "work"}
    plain_work = {key: n for key, n in plain.items() if key[0] == "work"}
    assert golf_work == plain_work, (f"work the Trainer does beyond the plain loop: {golf - plain}; "
                                     f"work it skips: {plain - golf}")
    assert not plain - golf, f"the plain loop dispatches ops the Trainer does not: {plain - golf}"
    return golf - plain


def test_the_trainer_adds_only_a_fixed_handful_of_scalar_ops_per_step(tmp_path):
    extras = {name: _framework_extra(tmp_path / name.split()[0], overrides) for name, overrides in CONFIGS.items()}
    small, large = extras.values()
    assert small == large, f"per-step framework ops that grow with the model: {extras}"
    assert sum(small.values()) <= 40, small
