"""Where metrics go: metrics.jsonl (always, rank 0) and one W&B run per job (rank 0, offline by default).

W&B is a sink, not the store: results.json is the truth, and `final/*` in the W&B summary is a copy of
its numbers. A run is placed so that W&B groups an ablation by itself: group = the launch
(golf.logging.launch), job_type = the ablation cell (the varied settings but the seed), tags = the
varied settings, a readable name unique in its launch, and an id derived from the group and the job key,
so a resumed job continues its run (`resume="allow"`). Each metric family has its own step axis.
"""

import hashlib
import json
import netrc
import os
import time
from pathlib import Path
from urllib.parse import urlparse

from golf.errors import ConfigError
from golf.logging.launch import job_launch
from golf.logging.settings import flat_key, job_settings, label, override_key
from golf.utils.atomic import write_text


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
# Each family is plotted against `<family>/step`: the training step, or for ttt/* the chunk (stream),
# document (LoRA) or epoch (pre-quant) index.
STEP_AXES = ("train", "val", "snr", "ebls", "eval", "artifact", "ttt")
WANDB_NAME_LIMIT = 64  # characters of a W&B tag or job type


def _capped(text: str) -> str:
    if len(text) <= WANDB_NAME_LIMIT:
        return text
    return f"{text[:WANDB_NAME_LIMIT - 7]}~{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def _read_results(job_dir: Path) -> dict:
    path = Path(job_dir) / "results.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _select(tree, dotted: str):
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def wandb_config(cfg, resolved_config: dict, results: dict) -> dict:
    """Flat keys to filter and group by: the group choices, seed and sweep, and every command-line
    override (`train.lr=0.1` as `train/lr`, typed as in the config; the raw list as `overrides`, which
    golf.report --from-wandb reads); the whole resolved config under `golf`. Choices, not `arch.name`:
    two arch options can share a builder (tiny and baseline are both the baseline GPT)."""
    choices = results.get("choices", {})
    overrides = results.get("overrides", [])
    flat = {}
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep:
            key = override_key(override)
            typed = choices.get(key, _select(resolved_config, key))
            flat[flat_key(key)] = value if typed is None else typed
    flat.update({key: choices[key] for key in DASHBOARD_KEYS if key in choices})
    flat.update(experiment=choices.get("experiment"), seed=cfg.seed, sweep=cfg.sweep_name)
    return {**flat, "overrides": overrides, "golf": resolved_config}


def run_identity(job_dir: Path, cfg, results: dict) -> dict:
    """Where the job's W&B run goes and what it is called (see the module docstring)."""
    launch = job_launch(job_dir, results, cfg.sweep_name)
    group = cfg.logger.group or launch["group"]
    settings = job_settings(results.get("choices", {}), results.get("overrides", []))
    cell_keys = [k for k in launch["varied"] if k in settings]
    cell = label(settings, cell_keys)
    key = results.get("job_key") or str(Path(job_dir).resolve())
    tags = [f"sweep={cfg.sweep_name}", *(f"{k}={settings[k]}" for k in cell_keys)]
    if "seed" in launch["varied"]:
        tags.append(f"seed={cfg.seed}")
    return {"id": hashlib.sha256(f"{group}:{key}".encode()).hexdigest()[:16], "group": group,
            "job_type": _capped(cell or "train"), "name": f"{cell} s{cfg.seed}" if cell else cfg.run_name,
            "tags": [_capped(t) for t in tags]}


def summary_columns(results: dict) -> dict:
    """`final/*`: every number of the report's tables, from results.json (and the headline's name)."""
    m, a, t = results.get("metrics", {}), results.get("artifact", {}), results.get("timing", {})
    ttt, compliance = results.get("ttt") or {}, results.get("compliance", {})
    columns = {k: v for k, v in m.items() if isinstance(v, (int, float))}
    columns.update({k: a[k] for k in ("bytes_total", "bytes_model", "bytes_code", "limit_bytes", "headroom_bytes")
                    if k in a})
    columns.update({k: t[k] for k in ("train_s", "quant_s", "eval_s") if k in t})
    columns.update(ttt_s=ttt.get("seconds"), n_params=results.get("model", {}).get("n_params"),
                   sliding_adapted_bpb=(ttt.get("memorization") or {}).get("sliding_adapted_bpb"),
                   compliant=compliance.get("compliant"), headline=m.get("headline"))
    columns.update({f"check/{name}": check["pass"] for name, check in compliance.get("checks", {}).items()})
    return {f"final/{k}": v for k, v in columns.items() if v is not None}


def check_wandb_credentials(logger) -> None:
    """Online W&B needs credentials (WANDB_API_KEY, or `wandb login`'s netrc entry for the host); without them
    W&B fails deep inside the run, so say it up front."""
    if logger.name != "wandb" or logger.mode != "online":
        return
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    path = Path(os.environ.get("NETRC", "~/.netrc")).expanduser()
    try:
        if path.is_file() and netrc.netrc(path).authenticators(host):
            return
    except netrc.NetrcParseError as exc:
        raise ConfigError(f"W&B online: cannot read {path} ({exc}); fix it, or set WANDB_API_KEY") from None
    raise ConfigError(f"W&B online (logger.mode=online, golf.dashboard publish) needs credentials for {host} and "
                      f"none were found (no WANDB_API_KEY, no entry in {path}); run `wandb login` or set "
                      f"WANDB_API_KEY, or keep logger.mode=offline and publish later: "
                      f"python -m golf.dashboard <sweep dir> publish")


class MetricSink:
    def __init__(self, job_dir: Path, cfg, resolved_config: dict, rank: int):
        self.enabled = rank == 0
        self.path = Path(job_dir) / "metrics.jsonl"
        self.run = None
        if self.enabled and cfg.logger.name == "wandb" and cfg.logger.mode != "disabled":
            self.run = self._init_wandb(job_dir, cfg, resolved_config)

    @staticmethod
    def _init_wandb(job_dir: Path, cfg, resolved_config: dict):
        import wandb

        results = _read_results(job_dir)
        identity = run_identity(job_dir, cfg, results)
        run = wandb.init(
            project=cfg.logger.project, entity=cfg.logger.entity, dir=str(job_dir), mode=str(cfg.logger.mode),
            **identity, resume="allow", config=wandb_config(cfg, resolved_config, results), reinit="create_new",
            settings=wandb.Settings(silent=True, console="off", save_code=False),
        )
        for family in STEP_AXES:
            run.define_metric(f"{family}/step", hidden=True)
            run.define_metric(f"{family}/*", step_metric=f"{family}/step")
        return run

    def log(self, step: int, metrics: dict) -> None:
        """One record at `step`; in W&B each family also gets `<family>/step` = step unless the metrics
        carry their own (ttt/step)."""
        if not self.enabled:
            return
        record = {"step": step, "time": round(time.time(), 3), **metrics}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.run is not None:
            families = {key.split("/")[0] for key in metrics if "/" in key}
            self.run.log({**{f"{family}/step": step for family in families}, **metrics})

    def rewind(self, step: int) -> None:
        """A resumed run writes the records after its checkpoint again: drop them (rank 0 only)."""
        if self.enabled:
            rewind_metrics(self.path, step)

    def summary(self, results: dict) -> None:
        """Write `final/<key>` once; they equal the numbers in results.json."""
        if self.run is not None:
            self.run.summary.update(summary_columns(results))

    def info(self) -> dict | None:
        if self.run is None:
            return None
        return {"mode": self.run.settings.mode, "project": self.run.project, "run_id": self.run.id,
                "group": self.run.group, "job_type": self.run.job_type, "name": self.run.name,
                "tags": list(self.run.tags), "dir": str(Path(self.run.settings.sync_dir).resolve())}

    def finish(self, exit_code: int) -> None:
        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None
