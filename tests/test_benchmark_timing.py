"""The eval/TTT benchmark's split of a stream pass into a one-time cost and a steady rate."""

import pytest

from benchmarks.eval_ttt import steady_state


def test_steady_state_recovers_the_one_time_cost_and_the_rate():
    chunk_predictions = [4096, 4096, 4096, 4096, 2048]
    seconds_per_prediction, one_time, last_chunk_scoring = 1e-4, 30.0, 0.05  # a compile inside the first chunk
    stamps, t = [], 0.0
    for index, n in enumerate(chunk_predictions):
        t += n * seconds_per_prediction + (one_time if index == 0 else 0.0)
        if index == len(chunk_predictions) - 1:
            t = stamps[-1] + last_chunk_scoring  # the last chunk is only scored: faster, and left out
        stamps.append(t)
    steady_s, one_time_s = steady_state(stamps, chunk_predictions)
    assert steady_s == pytest.approx(3 * 4096 * seconds_per_prediction)
    assert one_time_s == pytest.approx(one_time)
