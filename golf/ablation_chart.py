"""report.png: an ablation at a glance, titled by the sweep and the keys it varies.

Left, each group's val_bpb as its difference from the baseline group's mean (the baseline sits at 0 and
its mean is in the axis label), so differences of a few thousandths are visible without cutting a bar's
axis; right, the artifact bytes on an axis that starts at zero. Error bars are standard errors of the mean
(std / sqrt(n) over seeds).
"""

import math
from pathlib import Path

from golf.errors import GolfError


def _standard_error(row: dict) -> float:
    return (row["val_bpb_std"] or 0.0) / math.sqrt(row["n"])


def ablation_figure(rows: list[dict], baseline: str, title: str):
    try:
        import matplotlib
    except ImportError as exc:
        raise GolfError("the report's chart needs matplotlib: pip install -e '.[report]' "
                        "(or pip install matplotlib)") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r["n"]]
    base = next((r for r in shown if r["group"] == baseline), None)
    base_mean = base["val_bpb_mean"] if base else 0.0
    xs = range(len(shown))
    labels = [r["group"].replace(" ", "\n") for r in shown]
    colors = ["tab:gray" if r["group"] == baseline else "tab:blue" for r in shown]
    fig, (delta_ax, bytes_ax) = plt.subplots(1, 2, figsize=(max(8.0, 2.4 * len(shown) + 3), 4.2))
    delta_ax.bar(xs, [r["val_bpb_mean"] - base_mean for r in shown], yerr=[_standard_error(r) for r in shown],
                 capsize=6, color=colors)
    delta_ax.axhline(0.0, color="black", linewidth=0.8)
    delta_ax.set_xticks(xs, labels, fontsize=8)
    delta_ax.set_ylabel(f"Δ val_bpb vs {baseline} ({base_mean:.4f}); mean ± s.e.", fontsize=8)
    bytes_ax.bar(xs, [r["bytes_total_mean"] or 0 for r in shown], color=colors)
    bytes_ax.set_ylim(bottom=0)
    bytes_ax.set_xticks(xs, labels, fontsize=8)
    bytes_ax.set_ylabel("bytes_total (mean; the axis starts at 0)", fontsize=8)
    fig.suptitle(f"{title}; baseline in gray", fontsize=10)
    fig.tight_layout()
    return fig


def ablation_chart(path: Path, rows: list[dict], baseline: str, title: str) -> None:
    fig = ablation_figure(rows, baseline, title)  # first: it says what to install when matplotlib is missing
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=120)
    plt.close(fig)
