"""Ablation tables from finished jobs: `python -m golf.report <multirun dir | job dirs> [--baseline K=V]`.

Jobs are grouped by what varies between them other than the seed (group choices and CLI
overrides); each group gets n, mean ± std of the headline val_bpb and val_loss (nats) with the metric
it is (the protocol's: `ttt`, `sliding` or `roundtrip`, as the leaderboard reports each), the round trip
beside it, bytes, times and compliance, and a one-sided Welch t-test of val_loss against the baseline
group with a record bar: `--bar readme` (the written rule: at least 0.005 nats better at p < 0.01) or
`--bar frontier` (the final leaderboard's progression rule: p < 0.25 against the frontier row). Groups
whose headline metrics differ are flagged: comparing them mixes the protocols' gains. Failed jobs are listed
with their error. Writes report.md, groups.csv, jobs.csv, report.png and a W&B summary run with
the same tables (offline unless --wandb-mode online). `--from-wandb ENTITY/PROJECT` reads the
jobs from W&B runs instead (needs network and a key). `--rescored` adds, for every job, the protocols
scored afterwards on its artifact by `python -m golf.ttt` (`<job>/ttt/*.json`), each as a record whose
ttt setting is the protocol's name, so one trained model per seed gives a whole TTT ablation.
"""

import argparse
import csv
import json
import math
import statistics
import sys
from pathlib import Path

from omegaconf import OmegaConf

from golf.ablation_chart import ablation_chart
from golf.errors import GolfError
from golf.jobdir import JobDir
from golf.logging.jsonio import CorruptFile, read_json
from golf.logging.results import RESULTS_FILE
from golf.logging.settings import job_settings, label
from golf.logging.sinks import DASHBOARD_KEYS
from golf.record.script import train_script
from golf.resume import lock_is_held

# The record bars: (minimum improvement in nats, one-sided Welch p below which it counts)
BARS = {"readme": (0.005, 0.01), "frontier": (0.0, 0.25)}
GROUP_COLUMNS = ["group", "n", "failed", "unfinished", "running", "metric", "val_bpb_mean", "val_bpb_std",
                 "val_loss_mean", "val_loss_std", "val_bpb_roundtrip_mean", "delta_nats", "p_value", "p_paired",
                 "p_bar", "record_bar", "bytes_total_mean", "bytes_total_max", "train_s_mean", "eval_s_mean",
                 "ttt_s_mean", "compliant"]
JOB_COLUMNS = ["job", "group", "seed", "status", "metric", "val_bpb", "val_loss", "val_bpb_roundtrip", "bytes_total",
               "train_s", "eval_s", "ttt_s", "compliant", "sliding_adapted_bpb", "error"]


def load_job(job_dir: Path) -> dict:
    """One job's record from its results.json (Hydra's own files fill in what a failed job lacks)."""
    try:
        results = read_json(job_dir / RESULTS_FILE)
    except CorruptFile as exc:  # one damaged file (truncated by a full disk, edited by hand) is one failed row
        results = {"status": "unreadable", "error": {"type": "CorruptFile", "message": str(exc)}}
    hydra_dir = job_dir / ".hydra"
    overrides = results.get("overrides")
    if overrides is None and (hydra_dir / "overrides.yaml").exists():
        overrides = list(OmegaConf.load(hydra_dir / "overrides.yaml"))
    choices = results.get("choices")
    if choices is None and (hydra_dir / "hydra.yaml").exists():
        runtime = OmegaConf.load(hydra_dir / "hydra.yaml").hydra.runtime.choices
        choices = {k: v for k, v in runtime.items() if not k.startswith("hydra/") and v is not None}
    settings = job_settings(choices, overrides)
    status = results.get("status")
    error = results.get("error") or {}
    if status == "running" and lock_is_held(job_dir):  # the process running it holds the job lock (golf.resume)
        error = {"type": "Running", "message": "running now (a live process holds its job lock)"}
    elif status == "running":  # no live lock: it stopped without a chance to record it
        error = {"type": "Unfinished", "message": "no final status and no live process: killed, out of memory, or a "
                                                  "lost node (or running on a node whose locks this filesystem "
                                                  "does not show); resume=auto continues it"}
        status = "unfinished"
    if status == "interrupted":  # preempted or signalled, with a checkpoint to resume from
        info = results.get("interrupted") or {}
        error = {"type": "Interrupted", "message": f"{info.get('message', 'interrupted')}; {info.get('resume', '')}"}
        status = "unfinished"
    m, a, t = results.get("metrics", {}), results.get("artifact", {}), results.get("timing", {})
    ttt = results.get("ttt") or {}
    return {
        "job": str(job_dir), "seed": results.get("seed", _seed_from(overrides)), "settings": settings,
        "status": status if status in ("completed", "running", "unfinished") else "failed",
        "error": f"{error.get('type', '')}: {error.get('message', '')}" if status != "completed" else "",
        "metric": m.get("headline"), "val_bpb": m.get("val_bpb"), "val_loss": m.get("val_loss"),
        "val_bpb_roundtrip": m.get("val_bpb_roundtrip"), "bytes_total": a.get("bytes_total"),
        "train_s": t.get("train_s"), "eval_s": t.get("eval_s"), "ttt_s": t.get("ttt_s"),
        "compliant": (results.get("compliance") or {}).get("compliant"),
        "sliding_adapted_bpb": (ttt.get("memorization") or {}).get("sliding_adapted_bpb"),
        "sweep": (results.get("sweep") or {}).get("name"), "wandb_group": (results.get("wandb") or {}).get("group"),
        "windows": _windows(job_dir),
    }


def _windows(job_dir: Path) -> str | None:
    """`sliding` when the job scored overlapping windows (eval stride < eval length; a TTT run scores its
    chunks with them too), `full` for non-overlapping ones: groups compare like with like when this agrees."""
    jd = JobDir(job_dir)
    if not jd.config.exists():
        return None
    config = jd.resolved_config()
    seq_len = config["eval"].get("seq_len") or config["train"].get("seq_len", 0)
    stride = config["eval"].get("stride") or seq_len
    return "sliding" if 0 < stride < seq_len else "full"


def _protocol_code_bytes(job_dir: Path, overrides: list[str]) -> int:
    """The size of the train_gpt.py the job would have counted with these ttt / eval overrides."""
    from golf.ttt.__main__ import compose_config

    return len(train_script(compose_config(JobDir(job_dir), overrides))[0])


def load_rescored(job: dict, path: Path) -> dict:
    """A `golf.ttt` output on a job's artifact as a record of its own (same model, other protocol).

    Its bytes_total is the job's model bytes plus the train_gpt.py that protocol's config would count (the
    TTT package, a sliding evaluator), so a TTT row pays for the code it needs."""
    out = json.loads(path.read_text(encoding="utf-8"))
    ttt = out.get("ttt_result")
    scored = ttt or out["base"]
    extra = (_protocol_code_bytes(Path(job["job"]), out.get("overrides", []))
             - JobDir(job["job"]).train_script.stat().st_size) if job["bytes_total"] else 0
    sliding = out.get("stride", 0) < out.get("seq_len", 0)
    record = {**job, "job": f"{job['job']}/ttt/{path.stem}", "settings": {**job["settings"], "ttt": path.stem},
              "metric": "ttt" if ttt else ("sliding" if sliding else "roundtrip"),
              "windows": "sliding" if sliding else "full",
              "bytes_total": job["bytes_total"] + extra if job["bytes_total"] else None,
              "val_bpb": scored["val_bpb"], "val_loss": scored["val_loss"],
              "eval_s": out["base"]["seconds"] if ttt is None else None, "ttt_s": ttt["seconds"] if ttt else None,
              "compliant": ttt["compliant"] if ttt else job["compliant"]}
    if out.get("eval"):
        record["settings"]["eval"] = out["eval"]
    if ttt and ttt.get("memorization"):
        record["sliding_adapted_bpb"] = ttt["memorization"]["sliding_adapted_bpb"]
    return record


def _seed_from(overrides) -> int | None:
    for override in overrides or []:
        if override.startswith("seed="):
            return int(override.split("=", 1)[1])
    return None


def find_jobs(paths: list[Path], rescored: bool = False) -> list[dict]:
    dirs = []
    for path in paths:
        if not path.exists():
            raise GolfError(f"{path} does not exist; pass a multirun dir or job dirs (they hold {RESULTS_FILE})")
        found = [path] if (path / RESULTS_FILE).exists() else sorted(p.parent for p in path.rglob(RESULTS_FILE))
        if not found:
            raise GolfError(f"no {RESULTS_FILE} under {path}; pass a multirun dir or job dirs of golf.train")
        dirs.extend(found)
    jobs = []
    for d in dict.fromkeys(dirs):
        job = load_job(d)
        jobs.append(job)
        if rescored and job["status"] == "completed":
            jobs.extend(load_rescored(job, path) for path in sorted((d / "ttt").glob("*.json")))
    return jobs


def varying_keys(jobs: list[dict]) -> list[str]:
    """The settings whose value differs between jobs (the seed is never a setting), sorted."""
    keys = sorted({k for job in jobs for k in job["settings"]})
    return [k for k in keys if len({job["settings"].get(k) for job in jobs}) > 1]


def assign_groups(jobs: list[dict]) -> list[str]:
    """Label each job by the settings that vary across jobs; the labels in order of appearance."""
    varying = varying_keys(jobs)
    for job in jobs:
        job["group"] = label(job["settings"], varying) or "all"
    return list(dict.fromkeys(job["group"] for job in jobs))


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _std(values):
    values = [v for v in values if v is not None]
    return statistics.stdev(values) if len(values) > 1 else None


def welch_p_less(sample: list[float], baseline: list[float]) -> float | None:
    """One-sided Welch t-test p-value that `sample` has a lower mean than `baseline`."""
    if len(sample) < 2 or len(baseline) < 2:
        return None
    try:
        from scipy import stats
    except ImportError as exc:
        raise GolfError("the Welch t-test needs scipy: pip install -e '.[dev]' (or pip install scipy)") from exc

    p = stats.ttest_ind(sample, baseline, equal_var=False, alternative="less").pvalue
    return None if math.isnan(p) else float(p)


def paired_p_less(sample: dict[int, float], baseline: dict[int, float]) -> float | None:
    """One-sided paired t-test p-value over the seeds both groups ran (same seed = same data order and
    init, or the very same trained model for protocols scored on one artifact), or None if < 2 pairs."""
    seeds = sorted(set(sample) & set(baseline))
    if len(seeds) < 2:
        return None
    try:
        from scipy import stats
    except ImportError as exc:
        raise GolfError("the paired t-test needs scipy: pip install -e '.[dev]' (or pip install scipy)") from exc
    diffs = [sample[s] - baseline[s] for s in seeds]
    if all(d == diffs[0] for d in diffs):  # no spread: the t statistic is undefined
        return None
    p = stats.ttest_1samp(diffs, 0.0, alternative="less").pvalue
    return None if math.isnan(p) else float(p)


def summarize(jobs: list[dict], order: list[str], baseline: str, bar: str = "readme") -> list[dict]:
    done = {g: [j for j in jobs if j["group"] == g and j["status"] == "completed"] for g in order}
    base_losses = [j["val_loss"] for j in done[baseline]]
    rows = []
    for group in order:
        ok = done[group]
        losses = [j["val_loss"] for j in ok]
        delta = _mean(losses) - _mean(base_losses) if losses and base_losses else None
        p = welch_p_less(losses, base_losses) if group != baseline else None
        # The bar's own test: is the improvement at least bar_nats? (shift the group by the required margin)
        p_bar = welch_p_less([x + BARS[bar][0] for x in losses], base_losses) if group != baseline else None
        by_seed = {j["seed"]: j["val_loss"] for j in ok}
        paired = (paired_p_less(by_seed, {j["seed"]: j["val_loss"] for j in done[baseline]})
                  if group != baseline else None)
        bar_nats, bar_p = BARS[bar]
        metrics = sorted({str(j.get("metric")) for j in ok})
        rows.append({
            "group": group, "n": len(ok), "failed": sum(j["group"] == group and j["status"] == "failed" for j in jobs),
            **{status: sum(j["group"] == group and j["status"] == status for j in jobs)
               for status in ("unfinished", "running")},
            "metric": "/".join(metrics),
            "val_bpb_roundtrip_mean": _mean(j.get("val_bpb_roundtrip") for j in ok),
            "val_bpb_mean": _mean(j["val_bpb"] for j in ok), "val_bpb_std": _std([j["val_bpb"] for j in ok]),
            "val_loss_mean": _mean(losses), "val_loss_std": _std(losses),
            "delta_nats": delta, "p_value": p, "p_paired": paired, "p_bar": p_bar,
            "record_bar": bool(p_bar is not None and p_bar < bar_p and -delta >= bar_nats),
            "bytes_total_mean": _mean(j["bytes_total"] for j in ok),
            "bytes_total_max": max((j["bytes_total"] for j in ok if j["bytes_total"] is not None), default=None),
            "train_s_mean": _mean(j["train_s"] for j in ok), "eval_s_mean": _mean(j["eval_s"] for j in ok),
            "ttt_s_mean": _mean(j["ttt_s"] for j in ok),
            "compliant": f"{sum(bool(j['compliant']) for j in ok)}/{len(ok)}",
        })
    return rows


def _fmt(value, digits=4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _fmt_p(value) -> str:
    return "-" if value is None else f"{value:.2g}"


def _job_name(job: str) -> str:
    """The job dir's name; for a protocol rescored by golf.ttt, `<job dir>/ttt/<name>`."""
    parts = Path(job).parts
    return "/".join(parts[-3:]) if len(parts) >= 3 and parts[-2] == "ttt" else parts[-1]


BAR_TEXT = {"readme": "the written rule: Δ ≤ -0.005 nats, shown by a one-sided Welch test of the margin at p < 0.01",
            "frontier": "the final leaderboard's progression rule: lower val_loss at one-sided Welch p < 0.25"}


def markdown(rows: list[dict], jobs: list[dict], baseline: str, sources: list[str], bar: str = "readme") -> str:
    windows = {j.get("windows") for j in jobs if j["status"] == "completed"} - {None}
    lines = [f"# golf report: {len(jobs)} jobs, {len(rows)} groups", "",
             f"Baseline group: `{baseline}`. val_bpb / val_loss are each run's headline, the metric the leaderboard "
             f"reports for its protocol (column `metric`: `ttt`, `sliding` or `roundtrip`); `round trip` is the "
             f"non-overlapping eval of the same artifact. Δnats = mean val_loss minus the baseline's; p = one-sided "
             f"Welch t-test (lower val_loss); record bar ({bar}): {BAR_TEXT[bar]} (p bar). p paired = one-sided "
             f"paired t-test over the seeds both groups ran (valid when a seed pairs the runs: same data order and "
             f"init, or the same artifact scored by two protocols).", ""]
    if len(windows) > 1:
        lines += ["**The groups score with different windows (full and sliding): a Δ between them mixes the "
                  "sliding protocol's gain into the setting's (compare like with like, e.g. eval=sliding64 for every "
                  "group).**", ""]
    lines += ["| group | n | metric | val_bpb (mean ± std) | val_loss nats (mean ± std) | round trip | Δnats | p | "
              "p paired | p bar | record bar | bytes_total (max) | train s | eval s | ttt s | compliant |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        others = ", ".join(f"+{r[key]} {key}" for key in ("failed", "unfinished", "running") if r[key])
        n = f"{r['n']} ({others})" if others else str(r["n"])
        lines.append(
            f"| `{r['group']}` | {n} | {r['metric']} | "
            f"{_fmt(r['val_bpb_mean'])} ± {_fmt(r['val_bpb_std'])} | {_fmt(r['val_loss_mean'])} ± "
            f"{_fmt(r['val_loss_std'])} | {_fmt(r['val_bpb_roundtrip_mean'])} | {_fmt(r['delta_nats'])} | "
            f"{_fmt_p(r['p_value'])} | {_fmt_p(r['p_paired'])} | {_fmt_p(r['p_bar'])} | "
            f"{'**yes**' if r['record_bar'] else 'no'} | {_fmt(r['bytes_total_max'])} | {_fmt(r['train_s_mean'], 1)} | "
            f"{_fmt(r['eval_s_mean'], 1)} | {_fmt(r['ttt_s_mean'], 1)} | {r['compliant']} |")
    base = next(r for r in rows if r["group"] == baseline)
    if base["n"] and base["metric"] != "roundtrip" and base["val_bpb_roundtrip_mean"] is not None:
        gain = base["val_bpb_mean"] - base["val_bpb_roundtrip_mean"]
        lines += ["", f"Baseline `{baseline}`: {base['metric']} {_fmt(base['val_bpb_mean'], 6)} vs round trip "
                      f"{_fmt(base['val_bpb_roundtrip_mean'], 6)} (Δ {gain:+.6f} BPB from the protocol alone, not from "
                      f"the setting the groups vary)."]
    lines += ["", "## Jobs", "",
              "| group | seed | status | metric | val_bpb | val_loss | round trip | bytes_total | job |",
              "|---|---|---|---|---|---|---|---|---|"]
    for j in jobs:
        lines.append(f"| `{j['group']}` | {j['seed']} | {j['status']} | {j.get('metric')} | {_fmt(j['val_bpb'], 6)} | "
                     f"{_fmt(j['val_loss'], 6)} | {_fmt(j.get('val_bpb_roundtrip'), 6)} | {_fmt(j['bytes_total'])} | "
                     f"{_job_name(j['job'])} |")
    for status, title in (("failed", "Failed jobs"), ("unfinished", "Unfinished jobs (killed or interrupted)")):
        listed = [j for j in jobs if j["status"] == status]
        if listed:
            lines += ["", f"## {title}", ""]
            lines += [f"- `{Path(j['job']).name}` (`{j['group']}`, seed {j['seed']}): {j['error']}" for j in listed]
    lines += ["", "Sources: " + ", ".join(f"`{s}`" for s in sources), ""]
    return "\n".join(lines)


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def chart_title(sweep: str, varied: list[str], n_jobs: int) -> str:
    return f"{sweep}: {', '.join(varied) or 'seeds'} ({n_jobs} jobs)"


def log_wandb(out: Path, rows: list[dict], jobs: list[dict], png: Path, mode: str, project: str, group: str,
              name: str) -> dict:
    """A summary run (job_type=report, in the jobs' W&B group when they share one) holding both tables and the
    chart; returns where it went."""
    import wandb

    run = wandb.init(project=project, group=group, job_type="report", name=f"report-{name}", dir=str(out), mode=mode,
                     reinit="create_new", config={"sweep": name, "baseline": rows[0]["group"] if rows else None},
                     settings=wandb.Settings(silent=True, console="off", save_code=False))
    def table(columns, records):  # W&B tables take plain scalars; anything else goes in as its text
        return wandb.Table(columns=columns, data=[[r[c] if isinstance(r[c], (int, float, str, bool, type(None)))
                                                   else str(r[c]) for c in columns] for r in records])

    run.log({"report/groups": table(GROUP_COLUMNS, rows), "report/jobs": table(JOB_COLUMNS, jobs),
             "report/val_bpb": wandb.Image(str(png))})
    info = {"mode": mode, "project": project, "run_id": run.id, "dir": str(Path(run.settings.sync_dir).resolve())}
    run.finish()
    return info


def jobs_from_wandb(project: str, group: str | None) -> list[dict]:
    """The same job records from W&B runs: settings from the flat choice keys and the `overrides` list (as
    from job dirs, so override ablations stay apart), numbers from the final/* summary."""
    import wandb

    try:
        filters = {"jobType": {"$ne": "report"}, **({"group": group} if group else {})}
        runs = list(wandb.Api().runs(project, filters=filters))
    except Exception as exc:  # no network, no key, unknown project: all surface here
        raise GolfError(f"cannot read W&B project {project} ({type(exc).__name__}: {exc}); check `wandb login` and "
                        f"the network, or pass job dirs instead") from exc
    jobs = []
    for run in runs:
        s, c = run.summary, run.config
        finished = run.state == "finished" and "final/val_bpb" in s
        choices = {k: c[k] for k in ("experiment", *DASHBOARD_KEYS) if c.get(k)}
        jobs.append({
            "job": f"{project}/{run.id}", "seed": c.get("seed"), "sweep": c.get("sweep"), "wandb_group": run.group,
            "settings": job_settings(choices, c.get("overrides", [])),
            "status": "completed" if finished else "running" if run.state == "running" else "failed",
            "error": "" if finished else f"W&B state {run.state}",
            "metric": s.get("final/headline"),
            **{k: s.get(f"final/{k}") for k in ("val_bpb", "val_loss", "val_bpb_roundtrip", "bytes_total", "train_s",
                                                "eval_s", "ttt_s", "compliant", "sliding_adapted_bpb")},
        })
    return jobs


def pick_baseline(order: list[str], jobs: list[dict], spec: str | None) -> str:
    if spec is None:
        return order[0]
    wanted = dict(item.split("=", 1) for item in spec.split(","))
    matches = [g for g in order if any(all(j["settings"].get(k) == v for k, v in wanted.items())
                                       for j in jobs if j["group"] == g)]
    if len(matches) != 1:
        raise GolfError(f"--baseline {spec} matches {len(matches)} groups of {order}; name one group (K=V[,K=V])")
    return matches[0]


def build_report(jobs: list[dict], out: Path, baseline_spec: str | None, sources: list[str], wandb_mode: str,
                 project: str, bar: str = "readme") -> dict:
    order = assign_groups(jobs)
    baseline = pick_baseline(order, jobs, baseline_spec)
    rows = summarize(jobs, order, baseline, bar)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(markdown(rows, jobs, baseline, sources, bar), encoding="utf-8")
    write_csv(out / "groups.csv", GROUP_COLUMNS, rows)
    write_csv(out / "jobs.csv", JOB_COLUMNS, jobs)
    name = next((j["sweep"] for j in jobs if j.get("sweep")), "adhoc")
    ablation_chart(out / "report.png", rows, baseline, chart_title(name, varying_keys(jobs), len(jobs)))
    groups = {j["wandb_group"] for j in jobs if j.get("wandb_group")}  # failed jobs may have made no run
    wandb_info = (log_wandb(out, rows, jobs, out / "report.png", wandb_mode, project,
                            groups.pop() if len(groups) == 1 else name, name)
                  if wandb_mode != "disabled" else None)
    return {"baseline": baseline, "groups": rows, "wandb": wandb_info}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m golf.report", description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="*", type=Path, help="a multirun dir, or job dirs (each with results.json)")
    p.add_argument("--baseline", help="the reference group as K=V[,K=V], e.g. ttt=none (default: the first group)")
    p.add_argument("--out", type=Path, help="output folder (default: <first path>/report)")
    p.add_argument("--from-wandb", metavar="ENTITY/PROJECT", help="read the jobs from W&B runs instead of job dirs")
    p.add_argument("--group", help="with --from-wandb: only runs of this W&B group (a launch: <date>_<sweep>_<hash>)")
    p.add_argument("--rescored", action="store_true",
                   help="also report the protocols `python -m golf.ttt` scored on each job (<job>/ttt/*.json)")
    p.add_argument("--bar", default="readme", choices=tuple(BARS),
                   help="record bar: readme = >= 0.005 nats at p < 0.01 (the written rule; default), frontier = "
                        "p < 0.25 against the baseline row (the final leaderboard's progression rule)")
    p.add_argument("--wandb-mode", default="offline", choices=("offline", "online", "disabled"))
    p.add_argument("--project", default="golf", help="W&B project of the summary run")
    args = p.parse_args(argv)
    try:
        if args.from_wandb:
            jobs, sources = jobs_from_wandb(args.from_wandb, args.group), [args.from_wandb]
        elif args.paths:
            jobs, sources = find_jobs(args.paths, args.rescored), [str(path) for path in args.paths]
        else:
            raise GolfError("nothing to report; pass a multirun dir or job dirs, or --from-wandb ENTITY/PROJECT")
        if not jobs:
            raise GolfError(f"no runs found in {sources[0]}; check the project name and --group")
        out = args.out or (Path("report") if args.from_wandb else args.paths[0] / "report")
        report = build_report(jobs, out, args.baseline, sources, args.wandb_mode, args.project, args.bar)
    except GolfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print((out / "report.md").read_text(encoding="utf-8"))
    print(f"wrote {out / 'report.md'}, groups.csv, jobs.csv, report.png"
          + (f"; W&B run {report['wandb']['run_id']} ({report['wandb']['mode']}) in {report['wandb']['dir']}"
             if report["wandb"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
