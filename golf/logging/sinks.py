"""Where metrics go: metrics.jsonl (always, rank 0) and one W&B run per job (rank 0, offline by default).

W&B is a sink, not the store: results.json is the truth, and `final/*` in the W&B summary is a
copy of the same numbers.
"""

import json
import logging
import time
from pathlib import Path

from golf.utils.atomic import write_text

log = logging.getLogger(__name__)


def rewind_metrics(path: Path, step: int) -> None:
    """Drop the metrics.jsonl records a resumed run will write again: everything after the checkpoint.

    At a checkpoint of step s the log holds the train record of step s but not yet its validation. A line
    that does not parse (the torn last line of a run killed, or stopped by a full disk, mid-write) is dropped.
    """
    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
            if (r := _record(line)) is not None and (r["step"] < step or (r["step"] == step and "train/loss" in r))]
    write_text(path, "".join(line if line.endswith("\n") else line + "\n" for line in kept))


def _record(line: str) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("step"), int) else None


DASHBOARD_KEYS = ("arch", "ttt", "quant", "optimizer", "eval", "data")


def wandb_config(job_dir: Path, cfg, resolved_config: dict) -> dict:
    """Flat keys to filter and group by in the W&B UI (the group choices, seed, sweep), and the
    whole resolved config under `golf`. Choices, not `arch.name`: two arch options can share a
    builder (tiny and baseline are both the baseline GPT)."""
    results = Path(job_dir) / "results.json"
    choices = json.loads(results.read_text(encoding="utf-8")).get("choices", {}) if results.exists() else {}
    flat = {key: choices[key] for key in DASHBOARD_KEYS if key in choices}
    flat.update(experiment=choices.get("experiment"), seed=cfg.seed, sweep=cfg.sweep_name)
    return {**flat, "golf": resolved_config}


class MetricSink:
    def __init__(self, job_dir: Path, cfg, resolved_config: dict, rank: int):
        self.enabled = rank == 0
        self.path = Path(job_dir) / "metrics.jsonl"
        self.run = None
        if self.enabled and cfg.logger.name.value == "wandb" and cfg.logger.mode.value != "disabled":
            self.run = self._init_wandb(job_dir, cfg, resolved_config)

    @staticmethod
    def _init_wandb(job_dir: Path, cfg, resolved_config: dict):
        import wandb

        run = wandb.init(
            project=cfg.logger.project,
            entity=cfg.logger.entity,
            group=cfg.logger.group or cfg.sweep_name,
            job_type="train",
            name=cfg.run_name,
            dir=str(job_dir),
            mode=cfg.logger.mode.value,
            config=wandb_config(job_dir, cfg, resolved_config),
            reinit="create_new",
            settings=wandb.Settings(silent=True, console="off", save_code=False),
        )
        run.define_metric("step")
        for prefix in ("train/*", "val/*", "ttt/*", "eval/*", "artifact/*", "final/*"):
            run.define_metric(prefix, step_metric="step")
        return run

    def log(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        record = {"step": step, "time": round(time.time(), 3), **metrics}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.run is not None:
            self.run.log({"step": step, **metrics})

    def rewind(self, step: int) -> None:
        """A resumed run writes the records after its checkpoint again: drop them (rank 0 only)."""
        if self.enabled:
            rewind_metrics(self.path, step)

    def summary(self, final: dict) -> None:
        """Write `final/<key>` values once; they equal the numbers in results.json."""
        if self.run is not None:
            for key, value in final.items():
                self.run.summary[f"final/{key}"] = value

    def info(self) -> dict | None:
        if self.run is None:
            return None
        return {"mode": self.run.settings.mode, "project": self.run.project, "run_id": self.run.id,
                "group": self.run.group, "dir": str(Path(self.run.settings.sync_dir).resolve())}

    def finish(self, exit_code: int) -> None:
        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None
