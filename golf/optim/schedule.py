"""Learning-rate and momentum schedules of the baseline."""


def lr_multiplier(step: int, elapsed_ms: float, iterations: int, warmdown_iters: int,
                  max_wallclock_ms: float | None) -> float:
    """Linear warmdown to zero.

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


def muon_momentum(step: int, start: float, end: float, warmup_steps: int) -> float:
    """Momentum warmed linearly from `start` to `end` over `warmup_steps`."""
    frac = min(step / warmup_steps, 1.0) if warmup_steps > 0 else 1.0
    return (1 - frac) * start + frac * end
