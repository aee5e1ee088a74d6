"""The Polar Express coefficients (arXiv 2505.16932) for Muon's orthogonalization: one (a, b, c) per
Newton-Schulz step instead of the baseline quintic at every step (`optimizer.muon_coeffs=polar_express`)."""

# PR #1550 runs the first four.
POLAR_EXPRESS_COEFFS = (
    (8.156554524902461, -22.48329292557795, 15.878769915207462),
    (4.042929935166739, -2.808917465908714, 0.5000178451051316),
    (3.8916678022926607, -2.772484153217685, 0.5060648178503393),
    (3.285753657755655, -2.3681294933425376, 0.46449024233003106),
    (2.3465413258596377, -1.7097828382687081, 0.42323551169305323),
)


def polar_express_schedule(steps: int) -> tuple[tuple[float, float, float], ...]:
    if steps > len(POLAR_EXPRESS_COEFFS):
        raise ValueError(f"Polar Express has {len(POLAR_EXPRESS_COEFFS)} coefficient sets, asked for {steps} steps")
    return POLAR_EXPRESS_COEFFS[:steps]
