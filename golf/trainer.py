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
3. Model hooks: `base_model.on_train_step(step)`, if defined, runs before every step (e.g. depth
   recurrence switching on at a step); the model must derive its state from `step` alone. A
   resumed run first calls it with the last completed step. `base_model.gammas()`, if defined
   (EBLS), returns {name: scalar} logged as `ebls/<name>` at log steps. At log steps the per-layer
   gradient SNR (golf.optim.gradient_snr) of the step's gradient, before clipping, is logged as `snr/*`.
4. Checkpoints (`golf.checkpoint`): every `train.checkpoint_every_steps` steps, every
   `train.checkpoint_every_minutes` of training time, at the wall-clock cap, at the last step and
   on a preemption signal (then it stops with `Preempted`). Writing one is excluded from the
   training timer. A run started from a checkpoint continues from its step, elapsed training
   time, weights, optimizer states, averaging state, RNG and data position, so it computes
   exactly what the uninterrupted run would have.
"""

import copy
import logging
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from golf import preemption
from golf.guards import LossWatch, check_finite_weights
from golf.logging.console import expected_training, format_duration
from golf.models.layer_groups import layer_groups
from golf.optim.gradient_snr import GradientSNR
from golf.optim.schedule import fraction_lr_multiplier, lr_multiplier, muon_momentum, shape_stages, tokens_through

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
    snr: dict | None = None  # per-layer gradient SNR at the log steps: last and mean (GradientSNR.summary)


class Trainer:
    def __init__(self, base_model, model, optimizers: dict, make_loader, cfg, rt, grad_accum: int,
                 validate, sink, checkpointer=None, cap_seconds: float = 0.0, finish=None):
        self.base_model = base_model  # the raw module (state dicts, clipping)
        self.model = model  # what runs forward: compiled and/or DDP-wrapped
        self.optimizers = optimizers
        self.make_loader = make_loader
        self.cfg = cfg
        self.rt = rt
        self.grad_accum = grad_accum
        self.validate = validate  # callable(step) -> None, runs periodic validation
        self.sink = sink
        self.checkpointer = checkpointer  # None: no checkpoints (a record's train_gpt.py)
        self.finish = finish  # callable(model): end-of-training work counted as training time
        self.qat = None
        if cfg.quant.qat_threshold > 0:
            from golf.quant.qat import LateQAT  # imported only when used, so a record embeds what it runs

            self.qat = LateQAT(base_model, cfg.quant)
        self.max_wallclock_ms = 1000.0 * cap_seconds if cap_seconds > 0 else None
        self.stages = shape_stages(cfg.train)
        self.averager = None  # built in run(), from the weights training starts with
        self.snr = GradientSNR(layer_groups(base_model), cfg.ttt.snr_min, cfg.ttt.snr_max)
        # Stop flags travel over gloo on CPU tensors: an NCCL all-reduce read back would sync every step.
        self.flag_group = dist.new_group(backend="gloo") if rt.distributed else None

    def _sync(self) -> None:
        if self.rt.device.type == "cuda":
            torch.cuda.synchronize()

    def _zero_grad(self) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)

    def _shape(self, step: int) -> tuple[int, int]:
        """(batch_tokens, seq_len) of `step` under train.batch_schedule / train.seq_len_schedule."""
        return next((batch, seq) for start, batch, seq in reversed(self.stages) if step >= start)

    def _lr_mul(self, step: int, elapsed_ms: float) -> float:
        t = self.cfg.train
        if t.warmdown_fraction > 0:
            return fraction_lr_multiplier(step, elapsed_ms, t.iterations, t.warmdown_fraction, t.lr_floor,
                                          self.max_wallclock_ms)
        return lr_multiplier(step, elapsed_ms, t.iterations, t.warmdown_iters, self.max_wallclock_ms)

    def _on_train_step(self, step: int) -> None:
        hook = getattr(self.base_model, "on_train_step", None)
        if hook is not None:
            hook(step)

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
        # step-triggered switch such as depth recurrence), so each compiled graph exists before timing.
        model_states = (0, self.cfg.train.iterations)
        step_seconds = []
        for i in range(steps):
            started = time.perf_counter()
            self._on_train_step(model_states[(i // len(self.stages)) % 2])
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
        """True where any rank says True, so every rank stops and checkpoints at the same step."""
        if not self.rt.distributed:
            return list(flags)
        tensor = torch.tensor([int(f) for f in flags])
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX, group=self.flag_group)
        return [bool(v) for v in tensor.tolist()]

    def _checkpoint_due(self, step: int, training_ms: float, last_ckpt_ms: float) -> bool:
        t = self.cfg.train
        every_ms = 60_000 * t.checkpoint_every_minutes
        return ((t.checkpoint_every_steps > 0 and step % t.checkpoint_every_steps == 0)
                or (every_ms > 0 and training_ms - last_ckpt_ms >= every_ms))

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
        metrics = {"train/loss": loss, "train/lr_mul": lr_mul, "train/step_ms": step_ms,
                   "train/tokens_per_s": tok_s, "train/elapsed_s": elapsed_ms / 1000}
        gammas = getattr(self.base_model, "gammas", None)
        if gammas is not None:
            metrics.update({f"ebls/{name}": float(value) for name, value in gammas().items()})
        self.sink.log(step, {**metrics, **self.snr.metrics("snr")})

    def _save(self, step: int, training_ms: float, train_loss: torch.Tensor, loader, watch: LossWatch) -> None:
        watch.check(train_loss)
        check_finite_weights(self.base_model, step, "before writing the checkpoint")
        self.checkpointer.save(step, training_ms, float(train_loss), self.base_model, self.optimizers, loader,
                               self.averager)

    def _finish_training(self) -> float:
        """Load the averaged weights, then run `finish`; returns the ms it took (training time)."""
        t0 = time.perf_counter()
        if self.averager is not None:
            self.averager.apply()
        if self.finish is not None:
            self.finish(self.base_model)
        self._sync()
        return 1000.0 * (time.perf_counter() - t0)

    def run(self) -> TrainOutcome:
        t = self.cfg.train
        loader = self.make_loader()
        training_ms = 0.0
        stop_after = None
        step = 0
        last_step_start_ms = 0.0
        train_loss = torch.zeros((), device=self.rt.device)
        if t.ema_decay > 0 or t.swa_every > 0:
            from golf.optim.averaging import make_averager

            self.averager = make_averager(self.base_model, t)
        if self.checkpointer is not None and self.checkpointer.exists():
            state = self.checkpointer.load()
            self.checkpointer.restore(state, self.base_model, self.optimizers, loader, self.averager)
            step, training_ms = state["step"], state["training_ms"]
            if step > 0:
                self._on_train_step(step - 1)
            train_loss = torch.tensor(state["train_loss"], device=self.rt.device)
            self.sink.rewind(step)
            if self.max_wallclock_ms is not None and training_ms >= self.max_wallclock_ms:
                stop_after = step
        start_step, last_ckpt_ms = step, training_ms
        watch = LossWatch(self.rt.device)
        self._zero_grad()  # from here on every optimizer step leaves the gradients cleared for the next
        self._sync()
        t0 = time.perf_counter()
        while True:
            last_step = step == t.iterations or (stop_after is not None and step >= stop_after)
            if last_step or (t.val_every > 0 and step % t.val_every == 0):
                self._sync()
                training_ms += 1000.0 * (time.perf_counter() - t0)
                if last_step:
                    training_ms += self._finish_training()
                self.validate(step, training_ms)
                self._sync()
                t0 = time.perf_counter()
            if last_step:
                break
            elapsed_ms = training_ms + 1000.0 * (time.perf_counter() - t0)
            last_step_start_ms = elapsed_ms
            lr_mul = self._lr_mul(step, elapsed_ms)
            if self.qat is not None:
                self.qat.update(step, lr_mul)
            self._on_train_step(step)
            train_loss = self._forward_backward(loader, *self._shape(step))
            watch.observe(step + 1, train_loss)
            if self._logs(step + 1):
                self.snr.measure()  # on the device; read with the loss when the step is logged
            self._step_optimizers(step, lr_mul)
            step += 1
            if self.averager is not None:
                self.averager.update(step, lr_mul)
            elapsed_ms = training_ms + 1000.0 * (time.perf_counter() - t0)
            if self._logs(step):
                watch.check(train_loss)
                self._log_step(step, train_loss.item(), lr_mul, elapsed_ms, elapsed_ms / step)
            cap = self.max_wallclock_ms is not None and elapsed_ms >= self.max_wallclock_ms
            cap, preempt = self._agree(cap, preemption.requested() is not None)
            if stop_after is None and cap:
                stop_after = step
                log.info(f"stopping early: wall-clock cap {self.max_wallclock_ms / 1000:.0f}s reached at step {step}")
            if self.checkpointer is not None and (preempt or step == stop_after or step == t.iterations
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
                            tokens_seen=tokens_through(self.stages, step), hit_wallclock_cap=stop_after is not None,
                            resumed_from=start_step, last_step_start_s=last_step_start_ms / 1000.0,
                            final_seq_len=self._shape(max(step - 1, 0))[1],
                            averaging=self.averager.summary() if self.averager is not None else {"method": "none"},
                            snr=self.snr.summary())
