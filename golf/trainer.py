"""The training loop of the baseline, step for step.

1. Warmup steps (not an LR warmup): run real optimizer steps so every compiled path is built, then
   restore the initial weights and optimizer states and restart the data stream.
2. Main loop: micro-batches with gradient accumulation, Muon momentum warmup, LR x lr_multiplier
   (wall-clock-aware warmdown), optional grad clipping, periodic validation (excluded from the
   training timer), and a stop once measured training time reaches the wall-clock cap (agreed
   across ranks so all stop at the same step).
3. Checkpoints (`golf.checkpoint`): every `train.checkpoint_every_steps` steps, every
   `train.checkpoint_every_minutes` of training time, at the wall-clock cap, at the last step and
   on a preemption signal (then it stops with `Preempted`). Writing one is excluded from the
   training timer. A run started from a checkpoint continues from its step, elapsed training
   time, weights, optimizer states, RNG and data position, so it computes exactly what the
   uninterrupted run would have.
"""

import copy
import logging
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from golf import preemption
from golf.checkpoint import rewind_metrics
from golf.guards import LossWatch, check_finite_weights
from golf.logging.console import format_duration
from golf.optim.schedule import lr_multiplier, muon_momentum
from golf.quant.qat import LateQAT

log = logging.getLogger(__name__)


@dataclass
class TrainOutcome:
    steps: int
    train_seconds: float
    train_loss: float
    tokens_seen: int
    hit_wallclock_cap: bool
    resumed_from: int  # 0 for a fresh run, else the checkpoint step it continued from


class Trainer:
    def __init__(self, base_model, model, optimizers: dict, make_loader, cfg, rt, grad_accum: int,
                 validate, sink, checkpointer):
        self.base_model = base_model  # the raw module (state dicts, clipping)
        self.model = model  # what runs forward: compiled and/or DDP-wrapped
        self.optimizers = optimizers
        self.make_loader = make_loader
        self.cfg = cfg
        self.rt = rt
        self.grad_accum = grad_accum
        self.validate = validate  # callable(step) -> None, runs periodic validation
        self.sink = sink
        self.checkpointer = checkpointer
        self.qat = LateQAT(base_model, cfg.quant) if cfg.quant.qat_threshold > 0 else None
        t = cfg.budget.train_seconds
        self.max_wallclock_ms = 1000.0 * t if t > 0 else None

    def _sync(self) -> None:
        if self.rt.device.type == "cuda":
            torch.cuda.synchronize()

    def _zero_grad(self) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)

    def _forward_backward(self, loader) -> torch.Tensor:
        t = self.cfg.train
        total = torch.zeros((), device=self.rt.device)
        for micro in range(self.grad_accum):
            if self.rt.distributed:
                self.model.require_backward_grad_sync = micro == self.grad_accum - 1
            x, y = loader.next_batch(t.batch_tokens, t.seq_len, self.grad_accum)
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
        for i in range(steps):
            self._zero_grad()
            self._forward_backward(loader)
            for opt in self.optimizers.values():
                opt.step()
            self._zero_grad()
            if i + 1 == steps or (i + 1) % 10 == 0:
                log.info(f"warmup_step {i + 1}/{steps}")
        self.base_model.load_state_dict(initial_model, strict=True)
        for key, opt in self.optimizers.items():
            opt.load_state_dict(initial_opts[key])
        self._zero_grad()
        if self.rt.distributed:
            self.model.require_backward_grad_sync = True

    def _agree(self, *flags: bool) -> list[bool]:
        """True where any rank says True, so every rank stops and checkpoints at the same step."""
        if not self.rt.distributed:
            return list(flags)
        tensor = torch.tensor([int(f) for f in flags], device=self.rt.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return [bool(v) for v in tensor.tolist()]

    def _checkpoint_due(self, step: int, training_ms: float, last_ckpt_ms: float) -> bool:
        t = self.cfg.train
        return ((t.checkpoint_every_steps > 0 and step % t.checkpoint_every_steps == 0)
                or (t.checkpoint_every_minutes > 0 and training_ms - last_ckpt_ms >= 60_000 * t.checkpoint_every_minutes))

    def _log_step(self, step: int, loss: float, lr_mul: float, elapsed_ms: float, step_ms: float) -> None:
        t = self.cfg.train
        remaining_steps_ms = (t.iterations - step) * step_ms
        if self.max_wallclock_ms is not None:
            remaining_steps_ms = min(remaining_steps_ms, self.max_wallclock_ms - elapsed_ms)
        tok_s = t.batch_tokens / max(step_ms / 1000.0, 1e-9)
        log.info(f"step {step}/{t.iterations} train_loss {loss:.4f} lr_mul {lr_mul:.3f} | "
                 f"{step_ms:.1f} ms/step {tok_s:,.0f} tok/s | elapsed {format_duration(elapsed_ms / 1000)} "
                 f"ETA {format_duration(remaining_steps_ms / 1000)}")
        self.sink.log(step, {"train/loss": loss, "train/lr_mul": lr_mul, "train/step_ms": step_ms,
                             "train/tokens_per_s": tok_s, "train/elapsed_s": elapsed_ms / 1000})

    def _save(self, step: int, training_ms: float, train_loss: torch.Tensor, loader, watch: LossWatch) -> None:
        watch.check(train_loss)
        check_finite_weights(self.base_model, step, "before writing the checkpoint")
        self.checkpointer.save(step, training_ms, float(train_loss), self.base_model, self.optimizers, loader)

    def run(self) -> TrainOutcome:
        t = self.cfg.train
        loader = self.make_loader()
        training_ms = 0.0
        stop_after = None
        step = 0
        train_loss = torch.zeros((), device=self.rt.device)
        if self.checkpointer.exists():
            state = self.checkpointer.load()
            self.checkpointer.restore(state, self.base_model, self.optimizers, loader)
            step, training_ms = state["step"], state["training_ms"]
            train_loss = torch.tensor(state["train_loss"], device=self.rt.device)
            if self.rt.is_main:
                rewind_metrics(self.sink.path, step)
            if self.max_wallclock_ms is not None and training_ms >= self.max_wallclock_ms:
                stop_after = step
        start_step, last_ckpt_ms = step, training_ms
        watch = LossWatch(self.rt.device)
        self._sync()
        t0 = time.perf_counter()
        while True:
            last_step = step == t.iterations or (stop_after is not None and step >= stop_after)
            if last_step or (t.val_every > 0 and step % t.val_every == 0):
                self._sync()
                training_ms += 1000.0 * (time.perf_counter() - t0)
                self.validate(step, training_ms)
                self._sync()
                t0 = time.perf_counter()
            if last_step:
                break
            elapsed_ms = training_ms + 1000.0 * (time.perf_counter() - t0)
            lr_mul = lr_multiplier(step, elapsed_ms, t.iterations, t.warmdown_iters, self.max_wallclock_ms)
            if self.qat is not None:
                self.qat.update(step, lr_mul)
            self._zero_grad()
            train_loss = self._forward_backward(loader)
            watch.observe(step + 1, train_loss)
            self._step_optimizers(step, lr_mul)
            step += 1
            elapsed_ms = training_ms + 1000.0 * (time.perf_counter() - t0)
            if t.log_every > 0 and (step <= 10 or step % t.log_every == 0 or step == t.iterations):
                watch.check(train_loss)
                self._log_step(step, train_loss.item(), lr_mul, elapsed_ms, elapsed_ms / step)
            cap = self.max_wallclock_ms is not None and elapsed_ms >= self.max_wallclock_ms
            cap, preempt = self._agree(cap, preemption.requested() is not None)
            if stop_after is None and cap:
                stop_after = step
                log.info(f"stopping early: wall-clock cap {self.max_wallclock_ms / 1000:.0f}s reached at step {step}")
            if (preempt or step == stop_after or step == t.iterations
                    or self._checkpoint_due(step, elapsed_ms, last_ckpt_ms)):
                self._sync()
                training_ms += 1000.0 * (time.perf_counter() - t0)
                self._save(step, training_ms, train_loss, loader, watch)
                last_ckpt_ms = training_ms
                t0 = time.perf_counter()
            if preempt:
                raise preemption.Preempted(preemption.requested() or preemption.SIGNALS[0], step)
        watch.check(train_loss)
        return TrainOutcome(steps=step, train_seconds=training_ms / 1000.0, train_loss=float(train_loss),
                            tokens_seen=step * t.batch_tokens, hit_wallclock_cap=stop_after is not None,
                            resumed_from=start_step)
