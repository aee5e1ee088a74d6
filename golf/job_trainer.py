"""The training loop of a golf job: golf.trainer's loop plus what a job adds around it and a record's
train_gpt.py leaves out.

1. The metric stream: every log step's loss, LR multiplier and speed, EBLS gammas (`base_model.gammas()`,
   if defined, logged as `ebls/<name>`), the per-layer gradient SNR (golf.optim.gradient_snr) of the step's
   gradient before clipping (`snr/*`), and every periodic validation (`val/*`).
2. Checkpoints (`golf.checkpoint`): every `train.checkpoint_every_steps` steps, every
   `train.checkpoint_every_minutes` of training time, at the wall-clock cap, at the last step and
   on a preemption signal (then it stops with `Preempted`). Writing one is excluded from the
   training timer. A run started from a checkpoint continues from its step, elapsed training
   time, weights, optimizer states, averaging state, RNG and data position, so it computes
   exactly what the uninterrupted run would have; it first calls `base_model.on_train_step` with the
   last completed step and the training time it reached.
"""

import torch

from golf import preemption
from golf.guards import check_finite_weights
from golf.models.layer_groups import layer_groups
from golf.optim.gradient_snr import GradientSNR
from golf.trainer import Trainer, TrainOutcome


class JobTrainer(Trainer):
    def __init__(self, base_model, model, optimizers: dict, make_loader, cfg, rt, grad_accum: int, validate, sink,
                 checkpointer=None, cap_seconds: float = 0.0, finish=None):
        super().__init__(base_model, model, optimizers, make_loader, cfg, rt, grad_accum, validate, cap_seconds,
                         finish)
        self.sink = sink
        self.checkpointer = checkpointer  # None: no checkpoints
        self.snr = GradientSNR(layer_groups(base_model), cfg.ttt.snr_min, cfg.ttt.snr_max)
        self.preempt = False
        self.last_ckpt_ms = 0.0

    def _start(self, loader) -> tuple[int, torch.Tensor]:
        if self.checkpointer is None or not self.checkpointer.exists():
            return super()._start(loader)
        state = self.checkpointer.load()
        self.checkpointer.restore(state, self.base_model, self.optimizers, loader, self.averager)
        step, self.training_ms = state["step"], state["training_ms"]
        self.last_ckpt_ms = self.training_ms
        if step > 0:
            self._on_train_step(step - 1, self.training_ms)
        self.sink.rewind(step)
        return step, torch.tensor(state["train_loss"], device=self.rt.device)

    def _validated(self, step: int, result: dict) -> None:
        if result is not None:
            self.sink.log(step, {"val/loss": result["val_loss"], "val/bpb": result["val_bpb"]})

    def _measure(self) -> None:
        self.snr.measure()  # on the device; read with the loss when the step is logged

    def _logged(self, step: int, loss: float, lr_mul: float, step_ms: float, tok_s: float, elapsed_ms: float) -> None:
        metrics = {"train/loss": loss, "train/lr_mul": lr_mul, "train/step_ms": step_ms, "train/tokens_per_s": tok_s,
                   "train/elapsed_s": elapsed_ms / 1000}
        gammas = getattr(self.base_model, "gammas", None)
        if gammas is not None:
            metrics.update({f"ebls/{name}": float(value) for name, value in gammas().items()})
        self.sink.log(step, {**metrics, **self.snr.metrics("snr")})

    def _stops(self, cap: bool) -> bool:
        cap, self.preempt = self._agree(cap, preemption.requested() is not None)
        return cap

    def _checkpoint_due(self, step: int, training_ms: float) -> bool:
        t = self.cfg.train
        every_ms = 60_000 * t.checkpoint_every_minutes
        return ((t.checkpoint_every_steps > 0 and step % t.checkpoint_every_steps == 0)
                or (every_ms > 0 and training_ms - self.last_ckpt_ms >= every_ms))

    def _after_step(self, step: int, stop_after, train_loss: torch.Tensor, loader, watch) -> None:
        if self.checkpointer is not None and (self.preempt or step == stop_after or step == self.cfg.train.iterations
                                              or self._checkpoint_due(step, self._elapsed_ms())):
            with self._paused():
                watch.check(train_loss)
                check_finite_weights(self.base_model, step, "before writing the checkpoint")
                self.checkpointer.save(step, self.training_ms, float(train_loss), self.base_model, self.optimizers,
                                       loader, self.averager)
                self.last_ckpt_ms = self.training_ms
        if self.preempt:
            raise preemption.Preempted(preemption.requested() or preemption.SIGNALS[0], step)

    def run(self) -> TrainOutcome:
        outcome = super().run()
        outcome.snr = self.snr.summary()
        return outcome
