"""The per-layer SNR scale plot written to the job dir."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_snr_scales(snr: dict, path: Path, title: str) -> Path:
    """Bars of the mean scale per layer group, with the final chunk's scale as dots."""
    keys = list(snr["mean"])
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(keys) + 2), 3.2))
    ax.bar(range(len(keys)), [snr["mean"][k] for k in keys], color="#4c72b0", label="mean over steps")
    ax.plot(range(len(keys)), [snr["final"].get(k, float("nan")) for k in keys], "o", color="#dd8452",
            label="final step")
    ax.set_xticks(range(len(keys)), keys, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(f"scale = clip(SNR, {snr['clip'][0]}, {snr['clip'][1]})")
    ax.set_title(f"{title} ({snr['estimator']}, {'applied' if snr['applied'] else 'measured only'})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
