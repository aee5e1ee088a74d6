"""snr_scales.png: the per-layer gradient SNR of a run (training, and TTT when it ran).

matplotlib is imported here, on first use, so a base install (no `report` extra) still trains: without
it the plot is skipped with a one-line hint and everything else is written as usual.
"""

import logging
from pathlib import Path

log = logging.getLogger(__name__)
PHASES = {"train": "training (log steps)", "ttt": "test-time training"}


def plot_snr(snr: dict, path: Path, title: str) -> Path | None:
    """One row per phase in `snr` ({"train": GradientSNR.summary(), "ttt": ...}): per layer, the mean raw SNR of
    each estimator as bars, the last measurement as dots, the clip range [snr_min, snr_max] as dashed lines."""
    phases = [p for p in PHASES if snr.get(p) and snr[p]["steps"]]
    if not phases:
        return None
    try:
        import matplotlib
    except ImportError:
        log.warning(f"{path.name} skipped: matplotlib is not installed (pip install 'golf[report]')")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = max(4.0, 0.6 * max(len(snr[p]["mean"]["eb"]) for p in phases) + 2)
    fig, axes = plt.subplots(len(phases), 1, figsize=(width, 3.2 * len(phases)), squeeze=False)
    for ax, phase in zip(axes[:, 0], phases):
        _phase_panel(ax, snr[phase], f"{title}: {PHASES[phase]}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _phase_panel(ax, summary: dict, title: str) -> None:
    estimators = summary["estimators"]
    layers = list(summary["mean"][estimators[0]])
    bar = 0.8 / len(estimators)
    for i, (est, color) in enumerate(zip(estimators, ("#4c72b0", "#dd8452"))):
        xs = [x + (i - (len(estimators) - 1) / 2) * bar for x in range(len(layers))]
        ax.bar(xs, [summary["mean"][est][k] for k in layers], bar, color=color, label=f"{est} mean")
        ax.plot(xs, [summary["final"][est][k] for k in layers], "o", color="black", markersize=3,
                label="last" if i == 0 else None)
    for bound in summary["clip"]:
        ax.axhline(bound, color="gray", linestyle="--", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(layers)), layers, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(f"SNR (clip range {summary['clip'][0]}-{summary['clip'][1]} dashed)", fontsize=8)
    applied = f", scale {summary['estimator']} applied" if summary.get("applied") else ""
    ax.set_title(f"{title} over {summary['steps']} steps{applied}", fontsize=9)
    ax.legend(fontsize=7)
