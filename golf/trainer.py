"""The training loop of the baseline, step for step, plus the recipe options of the later records.

1. Warmup steps (not an LR warmup): run real optimizer steps so every compiled path is built (each
   batch shape of the seq_len / batch schedules, with the model's `on_train_step` state of the first
   and of the last step, taken in turn), then restore the initial
   weights and optimizer states and restart the data stream.
2. Main loop: micro-batches with gradient accumulation at the step's scheduled batch shape, Muon
   momentum warmup, LR = base_lr x lr_mul (the baseline's wall-clock-aware warmdown, or the
   fraction warmdown), optional grad clipping, weight averaging (golf.optim.averaging), periodic
   validation (excluded from the training timer), and a stop once measured training time reaches
   the wall-clock cap (agreed across ranks over a CPU process group, so the GPU never waits on it).
   No host sync per step: the loss is read only at log steps. After the last step the averaged
   weights (EMA or SWA), when on, replace the model's before the final validation, so they are
   what is evaluated, quantized and exported; then `finish(model)` runs the end-of-training work that
   reads training data (GPTQ calibration), counted in the training time: the loop's cap is the
   budget minus the reserve kept for it.
3. Model hooks: `base_model.on_train_step(step, progress)`, if defined, runs before every step with the
   share of training done (golf.optim.schedule.training_progress; e.g. depth recurrence switching on at
   a step or a fraction); the model must derive its state from these alone.

A record's train_gpt.py runs this loop as it is. golf's jobs run `golf.job_trainer.JobTrainer`, which adds
checkpoints and resume, preemption, gradient SNR and the metric stream through the hooks below (`_start`,
`_validated`, `_measure`, `_logged`, `_stops`, `_after_step`), each a no-op here.
"""

import contextlib
import copy
import logging
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from golf.guards import LossWatch
from golf.logging.console import expected_training, format_duration
from golf.optim.schedule import (
    fraction_lr_multiplier,
    lr_multiplier,
    muon_momentum,
    shape_stages,
    tokens_through,
    training_progress,
)

log = logging.getLogger(__name__)


@dataclass
class TrainOutcome:
    steps: int
    train_seconds: float
    train_loss: float
    tokens_seen: int
    hit_wallclock_cap: bool
    resumed_from: int  # 0 for a fresh run, else the checkpoint step it continued from
    averaging: dict  # which weight averaging was loaded into the model, with its count of updates / snapshots
    last_step_start_s: float = 0.0  # training time when the last step began (the cap rule: none starts after it)
    final_seq_len: int = 0  # sequence length of the last step (train.seq_len_schedule)
    snr: dict | None = None  # per-layer gradient SNR at the log steps (golf.job_trainer)


class Trainer:
    def __init__(self, base_model, model, optimizers: dict, make_loader, cfg, rt, grad_accum: int, validate,
                 cap_seconds: float = 0.0, finish=None):
        self.base_model = base_model  # the raw module (state dicts, clipping)
        self.model = model  # what runs forward: compiled and/or DDP-wrapped
        self.optimizers = optimizers
        self.make_loader = make_loader
        self.cfg = cfg
        self.rt = rt
        self.grad_accum = grad_accum
        self.validate = validate  # callable(step, training_ms) -> the validation result
        self.finish = finish  # callable(model): end-of-training work counted as training time
        self.qat = None
        if cfg.quant.qat_threshold > 0:
            from golf.quant.qat import LateQAT  # imported only when used, so a record embeds what it runs

            self.qat = LateQAT(base_model, cfg.quant)
        self.max_wallclock_ms = 1000.0 * cap_seconds if cap_seconds > 0 else None
        self.stages = shape_stages(cfg.train)
        self.averager = None  # built in run(), from the weights training starts with
        # Stop flags travel over gloo on CPU tensors: an NCCL all-reduce read back would sync every step.
        self.flag_group = dist.new_group(backend="gloo") if rt.distributed else None
        self.training_ms, self.t0 = 0.0, 0.0  # training time measured up to t0 (perf_counter seconds)

    def _sync(self) -> None:
        if self.rt.device.type == "cuda":
            torch.cuda.synchronize()

    def _zero_grad(self) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)

    def _elapsed_ms(self) -> float:
        return self.training_ms + 1000.0 * (time.perf_counter() - self.t0)

    @contextlib.contextmanager
    def _paused(self):
        """The time inside is not training time (validation, checkpoints)."""
        self._sync()
        self.training_ms = self._elapsed_ms()
        yield
        self._sync()
        self.t0 = time.perf_counter()

    def _shape(self, step: int) -> tuple[int, int]:
        """(batch_tokens, seq_len) of `step` under train.batch_schedule / train.seq_len_schedule."""
        return next((batch, seq) for start, batch, seq in reversed(self.stages) if step >= start)

    def _lr_mul(self, step: int, elapsed_ms: float) -> float:
        t = self.cfg.train
        if t.warmdown_fraction > 0:
            return fraction_lr_multiplier(step, elapsed_ms, t.iterations, t.warmdown_fraction, t.lr_floor,
                                          self.max_wallclock_ms)
        return lr_multiplier(step, elapsed_ms, t.iterations, t.warmdown_iters, self.max_wallclock_ms)

    def _on_train_step(self, step: int, elapsed_ms: float) -> None:
        hook = getattr(self.base_model, "on_train_step", None)
        if hook is not None:
            hook(step, training_progress(step, elapsed_ms, self.cfg.train.iterations, self.max_wallclock_ms))

    def _forward_backward(self, loader, batch_tokens: int, seq_len: int) -> torch.Tensor:
        total = torch.zeros((), device=self.rt.device)
        for micro in range(self.grad_accum):
            if self.rt.distributed:
                self.model.require_backward_grad_sync = micro == self.grad_accum - 1
            x, y = loader.next_batch(batch_tokens, seq_len, self.grad_accum)
            with torch.autocast(device_type=self.rt.device.type, dtype=self.rt.autocast_dtype or torch.bfloat16,
                                enabled=self.rt.autocast_dtype is not None):
                loss = self.model(x, y)
            total += loss.detach()
            (loss / self.grad_accum).backward()
        return total / self.grad_accum

    def _step_optimizers(self, step: int, lr_mul: float) -> None:
        o = self.cfg.optimizer
        if "matrix" in self.optimizers:
            momentum = muon_momentum(step, o.muon_momentum_warmup_start, o.muon_momentum,
                                     o.muon_momentum_warmup_steps)
            for group in self.optimizers["matrix"].param_groups:
                group["momentum"] = momentum
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * lr_mul
        if o.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.base_model.parameters(), o.grad_clip_norm)
        for opt in self.optimizers.values():
            opt.step()
        self._zero_grad()

    def warmup(self) -> None:
        steps = self.cfg.train.warmup_steps
        if steps <= 0:
            return
        initial_model = {k: v.detach().clone() for k, v in self.base_model.state_dict().items()}
        initial_opts = {k: copy.deepcopy(opt.state_dict()) for k, opt in self.optimizers.items()}
        loader = self.make_loader()
        self.model.train()
        self._zero_grad()
        # Cycle through every batch shape x both model states the run will reach (before and after a
        # step- or fraction-triggered switch such as depth recurrence), so each compiled graph exists before timing.
        model_states = ((0, 0.0), (self.cfg.train.iterations, self.max_wallclock_ms or 0.0))
        step_seconds = []
        for i in range(steps):
            started = time.perf_counter()
            self._on_train_step(*model_states[(i // len(self.stages)) % 2])
            self._forward_backward(loader, *self.stages[i % len(self.stages)][1:])
            for opt in self.optimizers.values():
                opt.step()
            self._zero_grad()
            self._sync()
            step_seconds.append(time.perf_counter() - started)
            if i + 1 == steps or (i + 1) % 10 == 0:
                log.info(f"warmup_step {i + 1}/{steps}")
        log.info(expected_training(step_seconds, self.cfg.train.iterations, 2 * len(self.stages),
                                   (self.max_wallclock_ms or 0.0) / 1000))
        self.base_model.load_state_dict(initial_model, strict=True)
        for key, opt in self.optimizers.items():
            opt.load_state_dict(initial_opts[key])
        if self.rt.distributed:
            self.model.require_backward_grad_sync = True

    def _agree(self, *flags: bool) -> list[bool]:
        """True where any rank says True, so every rank stops (and checkpoints) at the same step."""
        if not self.rt.distributed:
            return list(flags)
        tensor = torch.tensor([int(f) for f in flags])
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX, group=self.flag_group)
        return [bool(v) for v in tensor.tolist()]

    def _logs(self, step: int) -> bool:
        t = self.cfg.train
        return t.log_every > 0 and (step <= 10 or step % t.log_every == 0 or step == t.iterations)

    def _log_step(self, step: int, loss: float, lr_mul: float, elapsed_ms: float, step_ms: float) -> None:
        t = self.cfg.train
        remaining_steps_ms = (t.iterations - step) * step_ms
        if self.max_wallclock_ms is not None:
            remaining_steps_ms = min(remaining_steps_ms, self.max_wallclock_ms - elapsed_ms)
        tok_s = tokens_through(self.stages, step) / max(elapsed_ms / 1000.0, 1e-9)
        log.info(f"step {step}/{t.iterations} train_loss {loss:.4f} lr_mul {lr_mul:.3f} | "
                 f"{step_ms:.1f} ms/step {tok_s:,.0f} tok/s | elapsed {format_duration(elapsed_ms / 1000)} "
                 f"ETA {format_duration(remaining_steps_ms / 1000)}")
        self._logged(step, loss, lr_mul, step_ms, tok_s, elapsed_ms)

    def _finish_training(self) -> float:
        """Load the averaged weights, then run `finish`; returns the ms it took (training time)."""
        t0 = time.perf_counter()
        if self.averager is not None:
            self.averager.apply()
        if self.finish is not None:
            self.finish(self.base_model)
        self._sync()
        return 1000.0 * (time.perf_counter() - t0)

    # ---- hooks (golf.job_trainer) ---------------------------------------------------------------------

    def _start(self, loader) -> tuple[int, torch.Tensor]:
        """(first step, last train loss); the training time starts at self.training_ms."""
        return 0, torch.zeros((), device=self.rt.device)

    def _validated(self, step: int, result: dict) -> None:
        pass

    def _measure(self) -> None:
        """At a log step, after the backward pass and before the optimizer step."""

    def _logged(self, step: int, loss: float, lr_mul: float, step_ms: float, tok_s: float, elapsed_ms: float) -> None:
        """A log step's numbers (its line is printed already)."""

    def _stops(self, cap: bool) -> bool:
        """Whether this step is the last: the cap reached on any rank."""
        return self._agree(cap)[0]

    def _after_step(self, step: int, stop_after, train_loss: torch.Tensor, loader, watch: LossWatch) -> None:
        pass

    # ---- the loop -------------------------------------------------------------------------------------

    def run(self) -> TrainOutcome:
        t = self.cfg.train
        loader = self.make_loader()
        if t.ema_decay > 0 or t.swa_every > 0:
            from golf.optim.averaging import make_averager

            self.averager = make_averager(self.base_model, t)
        step, train_loss = self._start(loader)
        start_step = step
        cap_ms = self.max_wallclock_ms
        stop_after = step if cap_ms is not None and self.training_ms >= cap_ms else None
        last_step_start_ms = 0.0
        watch = LossWatch(self.rt.device)
        self._zero_grad()  # from here on every optimizer step leaves the gradients cleared for the next
        self._sync()
        self.t0 = time.perf_counter()
        while True:
            last_step = step == t.iterations or (stop_after is not None and step >= stop_after)
            if last_step or (t.val_every > 0 and step % t.val_every == 0):
                with self._paused():
                    if last_step:
                        self.training_ms += self._finish_training()
                    self._validated(step, self.validate(step, self.training_ms))
            if last_step:
                break
            elapsed_ms = last_step_start_ms = self._elapsed_ms()
            lr_mul = self._lr_mul(step, elapsed_ms)
            if self.qat is not None:
                self.qat.update(step, lr_mul)
            self._on_train_step(step, elapsed_ms)
            train_loss = self._forward_backward(loader, *self._shape(step))
            watch.observe(step + 1, train_loss)
            if self._logs(step + 1):
                self._measure()
            self._step_optimizers(step, lr_mul)
            step += 1
            if self.averager is not None:
                self.averager.update(step, lr_mul)
            elapsed_ms = self._elapsed_ms()
            if self._logs(step):
                watch.check(train_loss)
                self._log_step(step, train_loss.item(), lr_mul, elapsed_ms, elapsed_ms / step)
            if self._stops(cap_ms is not None and elapsed_ms >= cap_ms) and stop_after is None:
                stop_after = step
                log.info(f"stopping early: wall-clock cap {cap_ms / 1000:.0f}s reached at step {step}")
            self._after_step(step, stop_after, train_loss, loader, watch)
        watch.check(train_loss)
        return TrainOutcome(steps=step, train_seconds=self.training_ms / 1000.0, train_loss=float(train_loss),
                            tokens_seen=tokens_through(self.stages, step), hit_wallclock_cap=stop_after is not None,
                            resumed_from=start_step, last_step_start_s=last_step_start_ms / 1000.0,
                            final_seq_len=self._shape(max(step - 1, 0))[1],
                            averaging=self.averager.summary() if self.averager is not None else {"method": "none"})
