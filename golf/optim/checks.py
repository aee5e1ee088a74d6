"""Config rules of the training recipe (train.* schedules, weight averaging) and of the optimizer section (called
by golf.config.validate before any work starts)."""

import itertools

from golf.config.derived import grad_accum_steps
from golf.optim.polar_express import POLAR_EXPRESS_COEFFS
from golf.optim.schedule import shape_stages


def _check_schedule(key: str, schedule: list) -> list[str]:
    steps = [pair[0] for pair in schedule if len(pair) == 2]
    if (len(steps) != len(schedule) or any(s < 0 for s in steps) or any(b <= a for a, b in itertools.pairwise(steps))
            or any(pair[1] <= 0 for pair in schedule)):
        return [f"train.{key}={schedule} must be [[from_step, value], ...] with from_step >= 0 strictly increasing "
                f"and positive values, e.g. train.{key}=[[0,512],[2000,1024]]"]
    return []


def recipe_errors(cfg, world_size: int) -> list[str]:
    """Averaging, warmdown, batch-shape schedules (train.*) and the optimizer options of the later records."""
    t, o = cfg.train, cfg.optimizer
    errors = []
    if not 0 <= t.ema_decay < 1:
        errors.append(f"train.ema_decay={t.ema_decay} must be in [0, 1) (0 turns EMA off; the records use 0.997)")
    if t.swa_every < 0 or not 0 < t.swa_below <= 1:
        errors.append(f"train.swa_every={t.swa_every} must be >= 0 (0: off) and train.swa_below={t.swa_below} "
                      f"in (0, 1]")
    if t.ema_decay > 0 and t.swa_every > 0:
        errors.append(f"train.ema_decay={t.ema_decay} and train.swa_every={t.swa_every} both pick the weights to "
                      f"export; keep one (train.swa_every=0 or train.ema_decay=0)")
    if not 0 <= t.warmdown_fraction <= 1 or not 0 <= t.lr_floor < 1:
        errors.append(f"train.warmdown_fraction={t.warmdown_fraction} must be in [0, 1] and train.lr_floor="
                      f"{t.lr_floor} in [0, 1)")
    elif t.lr_floor > 0 and t.warmdown_fraction == 0:
        errors.append(f"train.lr_floor={t.lr_floor} only applies to the fraction warmdown; set train.warmdown_fraction "
                      f"(e.g. 0.72) or train.lr_floor=0")
    schedule_errors = (_check_schedule("seq_len_schedule", t.seq_len_schedule)
                       + _check_schedule("batch_schedule", t.batch_schedule))
    errors.extend(schedule_errors)
    if not schedule_errors and t.seq_len > 0 and t.batch_tokens > 0:
        accum = grad_accum_steps(cfg, world_size)
        for start, batch_tokens, seq_len in shape_stages(t):
            per_micro = world_size * accum * seq_len
            if (batch_tokens, seq_len) != (t.batch_tokens, t.seq_len) and batch_tokens % per_micro:
                errors.append(f"from step {start} the schedules give batch_tokens={batch_tokens}, seq_len={seq_len}: "
                              f"batch_tokens must be a multiple of world_size x grad_accum x seq_len = {world_size} x "
                              f"{accum} x {seq_len} = {per_micro}; fix train.batch_schedule / train.seq_len_schedule")
    for key in ("muon_weight_decay", "embed_weight_decay", "scalar_weight_decay"):
        if getattr(o, key) < 0:
            errors.append(f"optimizer.{key}={getattr(o, key)} must be >= 0 (0: off)")
    if o.muon_pe_safety <= 0:
        errors.append(f"optimizer.muon_pe_safety={o.muon_pe_safety} must be positive (1.0: none, as PR #1550)")
    if o.decoder_lr_mult <= 0:
        errors.append(f"optimizer.decoder_lr_mult={o.decoder_lr_mult} must be positive (1: off; PR #462 uses 2)")
    if o.muon_coeffs == "polar_express" and not 1 <= o.muon_backend_steps <= len(POLAR_EXPRESS_COEFFS):
        errors.append(f"optimizer.muon_coeffs=polar_express has {len(POLAR_EXPRESS_COEFFS)} coefficient sets, "
                      f"optimizer.muon_backend_steps={o.muon_backend_steps}; set it to 1-{len(POLAR_EXPRESS_COEFFS)} "
                      f"(PR #1550 uses 4)")
    muon_only = {"muon_weight_decay": 0.0, "embed_weight_decay": 0.0, "scalar_weight_decay": 0.0,
                 "decoder_lr_mult": 1.0, "muon_row_norm": False}
    changed = [k for k, off in muon_only.items() if getattr(o, k) != off] + (
        ["muon_coeffs"] if o.muon_coeffs != "ns5" else [])
    if o.name == "adamw" and changed:
        errors.append(f"optimizer.{', optimizer.'.join(changed)} apply to the Muon split only, not to optimizer=adamw "
                      f"(one AdamW, decay optimizer.weight_decay); use optimizer=muon_adam or muon_adamw")
    return errors
