"""What a dashboard shows of a sweep launch, read from its dir: the jobs and their ablation table (golf.report's
grouping and statistics), the W&B group, project and entity, the keys it varies and the metrics it logged."""

import json
from dataclasses import dataclass
from pathlib import Path

from golf.errors import GolfError
from golf.jobdir import JobDir
from golf.logging.jsonio import read_json
from golf.logging.launch import LAUNCH_FILE
from golf.report import assign_groups, find_jobs, pick_baseline, summarize, varying_keys


@dataclass
class Sweep:
    dir: Path
    name: str
    group: str  # the W&B group of the launch
    project: str
    entity: str | None
    jobs: list[dict]  # golf.report job records, each with its ablation "group" label
    rows: list[dict]  # golf.report.summarize rows, one per ablation group
    baseline: str
    varied: list[str]  # the settings that differ between the jobs (report groups by them)
    metric_keys: list[str]  # every key the jobs logged to metrics.jsonl


def _logger(job_dir: Path) -> dict:
    jd = JobDir(job_dir)
    return jd.resolved_config().get("logger", {}) if jd.config.exists() else {}


def _metric_keys(job_dirs: list[Path]) -> list[str]:
    keys: dict[str, None] = {}
    for job_dir in job_dirs:
        path = JobDir(job_dir).metrics
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                keys.update(dict.fromkeys(k for k in json.loads(line) if "/" in k))
    return list(keys)


def _group(sweep_dir: Path, jobs: list[dict]) -> str:
    if (sweep_dir / LAUNCH_FILE).exists():
        return read_json(sweep_dir / LAUNCH_FILE)["group"]
    groups = {j["wandb_group"] for j in jobs if j.get("wandb_group")}
    if len(groups) != 1:
        raise GolfError(f"{sweep_dir} has no {LAUNCH_FILE} and its jobs name {len(groups)} W&B groups; pass the dir "
                        f"of one sweep launch (outputs/multirun/<launch>/ or outputs/runs/<run>/)")
    return groups.pop()


def load_sweep(sweep_dir: Path, baseline: str | None = None) -> Sweep:
    sweep_dir = Path(sweep_dir).resolve()
    jobs = find_jobs([sweep_dir])
    order = assign_groups(jobs)
    base = pick_baseline(order, jobs, baseline)
    job_dirs = [Path(j["job"]) for j in jobs]
    loggers = [_logger(d) for d in job_dirs]
    logger = next((lg for lg in loggers if lg), {})
    return Sweep(dir=sweep_dir, name=next((j["sweep"] for j in jobs if j.get("sweep")), "adhoc"),
                 group=_group(sweep_dir, jobs), project=logger.get("project") or "golf", entity=logger.get("entity"),
                 jobs=jobs, rows=summarize(jobs, order, base), baseline=base, varied=varying_keys(jobs),
                 metric_keys=_metric_keys([d for d, j in zip(job_dirs, jobs) if j["status"] == "completed"]))
