"""YaRN rotary scaling (Peng et al. 2023, "YaRN: Efficient Context Window Extension of Large Language
Models", sections 3.2-3.4) for sequences longer than the training length L.

With s = T / L and, per rotated pair i, the number of full turns over the training length
r_i = L * theta_i / (2 pi), the frequencies are blended between interpolation (theta / s) and the original:

    theta'_i = (1 - g_i) theta_i / s + g_i theta_i,    g_i = clamp((r_i - alpha) / (beta - alpha), 0, 1)

(alpha = 1, beta = 32: pairs turning fewer than once are interpolated, pairs turning more than 32 times
keep their frequency), and the rotation tables are multiplied by the attention factor 0.1 ln(s) + 1, the
temperature correction of section 3.4 (as in the reference implementation, this scales the rotated dims).
The records' ROPE_YARN flag is the NTK base rescale, golf's arch.rope_ntk_train_len; this is the paper's.
"""

import math

import torch

ALPHA, BETA = 1.0, 32.0


def yarn_inv_freq(inv_freq: torch.Tensor, train_len: int, seq_len: int) -> tuple[torch.Tensor, float]:
    """(scaled inverse frequencies, attention factor) for `seq_len` > `train_len`."""
    s = seq_len / train_len
    turns = train_len * inv_freq / (2 * math.pi)
    g = ((turns - ALPHA) / (BETA - ALPHA)).clamp(0.0, 1.0)
    return (1 - g) * inv_freq / s + g * inv_freq, 0.1 * math.log(s) + 1.0
