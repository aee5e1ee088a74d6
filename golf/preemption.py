"""Preemption: SIGTERM / SIGUSR1 / SIGUSR2 and Ctrl-C (SIGINT) ask the run to checkpoint and stop at the next step.

During training the handler only sets a flag (nothing heavy may run inside a signal handler);
the trainer polls it after every step, agrees on it across ranks, writes `ckpt/last.pt` and raises
`Preempted`. Once the final checkpoint is on disk (`stop_immediately`), a signal raises
`Preempted` at once: quantization and evaluation are redone from that checkpoint on resume.
Handlers installed before ours (submitit's requeue handler on SLURM) are called after the
checkpoint is on disk, so a requeued job always finds it. A second Ctrl-C during training stops at
once, without the checkpoint (Python's KeyboardInterrupt), for a user who cannot wait for the step.
"""

import logging
import signal

log = logging.getLogger(__name__)

SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGUSR1", "SIGUSR2") if hasattr(signal, name))

_received: int | None = None
_immediate_step: int | None = None
_previous: dict[int, object] = {}


class Preempted(Exception):
    """The run stopped on a signal after writing its checkpoint; `resume=auto` continues it."""

    def __init__(self, signum: int, step: int | None):
        self.signum, self.step = signum, step
        where = f"at step {step}" if step is not None else "before training"
        super().__init__(f"interrupted by {signal.Signals(signum).name} {where}")


def _handle(signum, frame) -> None:
    global _received
    if _received is None:
        again = " (Ctrl-C again stops at once, without it)" if signum == signal.SIGINT else ""
        log.warning(f"received {signal.Signals(signum).name}: checkpointing at the end of this step, then "
                    f"stopping{again}")
    elif signum == signal.SIGINT and _immediate_step is None:
        raise KeyboardInterrupt
    _received = signum
    if _immediate_step is not None:
        raise Preempted(signum, _immediate_step)


def stop_immediately(step: int) -> None:
    """From now on a signal stops the run where it is; the checkpoint of `step` holds all training."""
    global _immediate_step
    _immediate_step = step
    if _received is not None:
        raise Preempted(_received, step)


def install() -> None:
    """Route the preemption signals to the flag (main thread only, as Python requires)."""
    global _received, _immediate_step
    _received, _immediate_step = None, None
    for sig in SIGNALS:
        previous = signal.signal(sig, _handle)
        if previous is not _handle:
            _previous[sig] = previous


def requested() -> int | None:
    """The signal received since `install`, or None."""
    return _received


def uninstall() -> None:
    global _immediate_step
    _immediate_step = None
    for sig, previous in _previous.items():
        signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
    _previous.clear()


def forward(signum: int) -> None:
    """Give the signal to the handler that was there before ours (e.g. submitit's requeue), if any."""
    chain(_previous.get(signum), signum)


def chain(handler, signum: int) -> None:
    """Call a handler that was installed before golf's; Python's own Ctrl-C handler is skipped (it would turn a
    completed checkpoint-and-stop into a KeyboardInterrupt traceback)."""
    if callable(handler) and handler is not signal.default_int_handler:
        handler(signum, None)
