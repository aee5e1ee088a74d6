"""Schedules of the training loop: LR multiplier, Muon momentum, and sequence-length / batch stages."""


def lr_multiplier(step: int, elapsed_ms: float, iterations: int, warmdown_iters: int,
                  max_wallclock_ms: float | None) -> float:
    """Linear warmdown to zero (the baseline).

    With a wall-clock cap, the warmdown length in ms is estimated from the average step time so
    far (warmdown_iters * ms/step) and the LR decays linearly over the remaining time; without a
    cap it decays over the last `warmdown_iters` steps.
    """
    if warmdown_iters <= 0:
        return 1.0
    if max_wallclock_ms is None:
        warmdown_start = max(iterations - warmdown_iters, 0)
        if warmdown_start <= step < iterations:
            return max((iterations - step) / max(warmdown_iters, 1), 0.0)
        return 1.0
    step_ms = elapsed_ms / max(step, 1)
    warmdown_ms = warmdown_iters * step_ms
    remaining_ms = max(max_wallclock_ms - elapsed_ms, 0.0)
    return remaining_ms / max(warmdown_ms, 1e-9) if remaining_ms <= warmdown_ms else 1.0


def training_progress(step: int, elapsed_ms: float, iterations: int, max_wallclock_ms: float | None) -> float:
    """The share of training done: of the wall-clock cap used so far, or of the iterations without a cap."""
    return elapsed_ms / max_wallclock_ms if max_wallclock_ms is not None else step / iterations


def fraction_lr_multiplier(step: int, elapsed_ms: float, iterations: int, fraction: float, floor: float,
                           max_wallclock_ms: float | None) -> float:
    """1 until the last `fraction` of the run, then linear towards 0, never below `floor`:
    max((1 - progress) / fraction, floor) (PR #1550: 0.72, floor 0; PR #1787 to #2135: 0.75-0.85, MIN_LR 0.1).
    """
    progress = training_progress(step, elapsed_ms, iterations, max_wallclock_ms)
    if progress < 1.0 - fraction:
        return 1.0
    return max((1.0 - progress) / fraction, floor)


def muon_momentum(step: int, start: float, end: float, warmup_steps: int) -> float:
    """Momentum warmed linearly from `start` to `end` over `warmup_steps`."""
    frac = min(step / warmup_steps, 1.0) if warmup_steps > 0 else 1.0
    return (1 - frac) * start + frac * end


def scheduled(schedule: list[list[int]], step: int, default: int) -> int:
    """The value of the last `[from_step, value]` pair with from_step <= step; `default` before the first."""
    value = default
    for from_step, stage_value in schedule:
        if from_step > step:
            break
        value = stage_value
    return value


def shape_stages(train_cfg) -> list[tuple[int, int, int]]:
    """`(from_step, batch_tokens, seq_len)` for every stretch of steps with one batch shape, in order."""
    t = train_cfg
    starts = sorted({0} | {s for s, _ in t.seq_len_schedule} | {s for s, _ in t.batch_schedule})
    return [(s, scheduled(t.batch_schedule, s, t.batch_tokens), scheduled(t.seq_len_schedule, s, t.seq_len))
            for s in starts]


def tokens_through(stages: list[tuple[int, int, int]], steps: int) -> int:
    """Training tokens consumed by the first `steps` steps."""
    total = 0
    for i, (start, batch_tokens, _) in enumerate(stages):
        end = min(stages[i + 1][0] if i + 1 < len(stages) else steps, steps)
        total += max(end - start, 0) * batch_tokens
    return total
