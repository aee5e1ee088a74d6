"""Training checkpoints: `ckpt/last.pt`, everything needed to continue a run bit for bit.

One file per job, written by rank 0: the model weights (identical on every rank), and for every
rank its optimizer states (Muon keeps each matrix's momentum only on the rank that
orthogonalizes it, so optimizer states differ across ranks), RNG states and data loader
position; plus the step, the measured training time, the last train loss and the weight
averaging state (EMA shadow or SWA sum, the same on every rank; None when averaging is off). The
file is written to a temp name, fsynced and renamed, so a kill during the write leaves the
previous checkpoint.

Everything in it is plain data (tensors, numbers, strings, lists, dicts): the Python and numpy RNG
states are stored as ints and an int64 tensor, not as pickled objects, so the file loads with
`torch.load(weights_only=True)`, which refuses to build any other object. A job dir may sit on a shared
filesystem and `resume=auto` finds it by a predictable key: a planted checkpoint must not run code.
"""

import hashlib
import json
import logging
import pickle
import random
import re
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from golf.data.loader_state import loader_state, restore_loader
from golf.errors import GolfError
from golf.utils.atomic import atomic_write

log = logging.getLogger(__name__)

CKPT_DIR = "ckpt"
CKPT_FILE = "last.pt"
FORMAT_VERSION = 2  # 2: RNG states as plain data (format 1 had to be unpickled in full)


class CheckpointError(GolfError):
    """A checkpoint is unreadable or belongs to a different run configuration."""


def config_sha256(resolved: dict) -> str:
    """Hash of the resolved config, ignoring `resume` (how a run starts is not what it computes)."""
    kept = {k: v for k, v in resolved.items() if k != "resume"}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


def checkpoint_path(job_dir: Path) -> Path:
    return Path(job_dir) / CKPT_DIR / CKPT_FILE


def _plain(obj):
    """Tensors moved to CPU (recursively) so a checkpoint loads on any device and pickles across ranks; config
    enums (an optimizer group's `coeffs`) as plain strings, which `weights_only=True` loads."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, dict):
        return {_plain(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    return obj


def rng_state() -> dict:
    """The Python, numpy and torch RNG states as plain data (see the module docstring)."""
    version, internal, gauss_next = random.getstate()
    numpy = np.random.get_state(legacy=False)
    mt19937 = numpy["state"]
    state = {"python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
             "numpy": {"key": torch.from_numpy(mt19937["key"].astype(np.int64)), "pos": int(mt19937["pos"]),
                       "has_gauss": int(numpy["has_gauss"]), "gauss": float(numpy["gauss"])},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    py, npy = state["python"], state["numpy"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
    np.random.set_state({"bit_generator": "MT19937", "state": {"key": npy["key"].numpy().astype(np.uint32),
                                                               "pos": npy["pos"]},
                         "has_gauss": npy["has_gauss"], "gauss": npy["gauss"]})
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _gather(obj, rt) -> list:
    """Every rank's `obj` on rank 0 (None elsewhere); the identity on one process."""
    if not rt.distributed:
        return [obj]
    everyone = [None] * rt.world_size if rt.is_main else None
    dist.gather_object(obj, everyone, dst=0)
    return everyone


class Checkpointer:
    """Saves and restores the training state of one job; every rank calls `save` and `load`."""

    def __init__(self, job_dir: Path, config_hash: str, rt):
        self.path = checkpoint_path(job_dir)
        self.config_hash = config_hash
        self.rt = rt

    def exists(self) -> bool:
        return self.path.is_file()

    def save(self, step: int, training_ms: float, train_loss: float, base_model, optimizers: dict, loader,
             averager=None) -> None:
        t0 = time.perf_counter()
        mine = _plain({"optimizers": {k: opt.state_dict() for k, opt in optimizers.items()},
                       "rng": rng_state(), "loader": loader_state(loader)})
        ranks = _gather(mine, self.rt)
        if self.rt.is_main:
            state = {"format_version": FORMAT_VERSION, "config_sha256": self.config_hash, "step": step,
                     "training_ms": training_ms, "train_loss": train_loss, "world_size": self.rt.world_size,
                     "model": _plain(base_model.state_dict()), "ranks": ranks,
                     "averaging": _plain(averager.state_dict()) if averager is not None else None}
            atomic_write(self.path, lambda f: torch.save(state, f))
            log.info(f"checkpoint: step {step} -> {self.path} ({self.path.stat().st_size:,} bytes, "
                     f"{time.perf_counter() - t0:.2f}s)")
        if self.rt.distributed:
            dist.barrier()  # no rank may run ahead (or exit) before the file is complete

    def load(self) -> dict:
        """The saved state, checked against this run's config hash and world size."""
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:
            # torch explains a refusal in a paragraph of advice; the part after "WeightsUnpickler error:" says what
            # it refused, and its GLOBAL names a Python object
            reason = " ".join(str(exc).split("WeightsUnpickler error:")[-1].split()).split(" Check the doc")[0]
            refused = re.search(r"GLOBAL (\S+)", reason)
            if isinstance(exc, pickle.UnpicklingError) and refused:
                raise CheckpointError(
                    f"{self.path} holds a Python object ({refused.group(1)}), not only tensors and plain data; "
                    f"golf loads checkpoints without running code, so it refuses this one (planted, or written by "
                    f"golf before checkpoint format {FORMAT_VERSION}); delete {self.path.parent} to restart the job "
                    f"from step 0"
                ) from None
            raise CheckpointError(f"{self.path} is unreadable ({type(exc).__name__}: {reason}); delete "
                                  f"{self.path.parent} to restart the job from step 0") from exc
        if state.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{self.path} has format {state.get('format_version')}, this golf reads "
                                  f"{FORMAT_VERSION}; resume with the golf version that wrote it")
        if state["config_sha256"] != self.config_hash:
            raise CheckpointError(f"{self.path} was written with config sha256 {state['config_sha256'][:12]}, this "
                                  f"run's config is {self.config_hash[:12]}; resume with the same config, or use "
                                  f"resume=never to start a new run")
        if state["world_size"] != self.rt.world_size:
            raise CheckpointError(f"{self.path} was written by {state['world_size']} processes, this run has "
                                  f"{self.rt.world_size}; resume with launcher.nproc={state['world_size']}")
        return state

    def restore(self, state: dict, base_model, optimizers: dict, loader, averager=None) -> None:
        """Load weights, this rank's optimizer states, RNG, loader position and averaging state from `state`."""
        base_model.load_state_dict(state["model"], strict=True)
        if averager is not None:  # the config hash check guarantees the file holds its state
            averager.load_state_dict(state["averaging"])
        mine = state["ranks"][self.rt.rank]
        for key, opt in optimizers.items():
            opt.load_state_dict(mine["optimizers"][key])
        restore_loader(loader, mine["loader"])
        set_rng_state(mine["rng"])
        log.info(f"resumed from {self.path}: step {state['step']}, training time {state['training_ms'] / 1000:.1f}s")
