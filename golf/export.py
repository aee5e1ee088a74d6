"""A record folder in the official layout from the job dirs of one config: `python -m golf.export <dirs> --out DIR`.

Writes what a records/ PR holds: README.md (the seeds' table, mean ± std of the headline metric, bytes per
seed, the compliance block, the commands), submission.json (the official fields plus golf's per-seed
results), train_gpt.py (the runs' own record script, byte for byte the code they counted), one train log per
seed and requirements.txt. `--with-artifacts` also copies each seed's artifact, checked against the size and
sha256 its results.json recorded.
"""

import argparse
import json
import shlex
import shutil
import statistics
import sys
import time
from pathlib import Path

from golf.artifact.container import payload_sha256
from golf.errors import GolfError
from golf.jobdir import JobDir
from golf.logging.jsonio import write_json
from golf.logging.results import RESULTS_FILE, ArtifactInfo, Metrics, Timing, section
from golf.pipeline import HEADLINES
from golf.record.entry import ARTIFACT
from golf.record.script import SCRIPT_NAME

# Keys that may differ between the seeds of one config: where and under which name a job ran.
PER_JOB_KEYS = ("seed", "run_name", "sweep_name", "paths", "logger")
REQUIREMENTS = {"torch": "torch>=2.4", "numpy": "numpy>=1.26", "sentencepiece": "sentencepiece>=0.2",
                "zstd": "zstandard>=0.22", "brotli": "brotli>=1.1"}
# issue #1017's conditions: what golf does for each, and the check (if any) that measured it in the run
CONDITIONS = [
    ("C1 causal", None, "every score comes from a causal model over the strict prefix (tested by perturbing "
     "later tokens, tests/test_ttt_legality.py)"),
    ("C2 normalized", None, "every score is -log softmax over the whole vocabulary"),
    ("C3 score before update", "score_before_update", "no val token is read by an adaptation before it is scored "
     "(the ledger records what the val stream handed out)"),
    ("C4 single pass", "each_token_scored_once", "each val token scored exactly once, left to right"),
]


def find_job_dirs(paths: list[Path]) -> list[Path]:
    dirs = []
    for path in paths:
        found = [path] if (path / RESULTS_FILE).exists() else sorted(p.parent for p in path.rglob(RESULTS_FILE))
        if not found:
            raise GolfError(f"no {RESULTS_FILE} in or under {path}; pass the job dirs of one config")
        dirs.extend(found)
    return list(dict.fromkeys(dirs))


def load_runs(dirs: list[Path]) -> list[dict]:
    """The completed runs of one config (anything else is an error naming the offending dir), by seed."""
    runs = []
    for job_dir in dirs:
        jd = JobDir(job_dir)
        results = json.loads(jd.results.read_text(encoding="utf-8"))
        if results.get("status") != "completed":
            error = results.get("error") or {}
            raise GolfError(f"{job_dir} is {results.get('status')} ({error.get('message', 'no error recorded')}); "
                            f"export only completed runs")
        runs.append({"dir": jd, "results": results, "config": jd.resolved_config()})
    shared = [{k: v for k, v in run["config"].items() if k not in PER_JOB_KEYS} for run in runs]
    for run, config in zip(runs, shared):
        if config != shared[0]:
            diff = sorted(k for k in config if config[k] != shared[0].get(k))
            raise GolfError(f"{run['dir'].path} differs from {runs[0]['dir'].path} in {', '.join(diff)}; a record is "
                            f"one config over seeds, export each config separately")
    seeds = [run["results"]["seed"] for run in runs]
    if len(set(seeds)) != len(seeds):
        raise GolfError(f"seeds {seeds} repeat; pass each seed's job dir once")
    return sorted(runs, key=lambda run: run["results"]["seed"])


def record_script(runs: list[dict]) -> bytes:
    """The train_gpt.py every seed counted: the same bytes in every job dir, of the size each recorded."""
    scripts = {run["dir"].path: run["dir"].train_script.read_bytes() for run in runs}
    first = scripts[runs[0]["dir"].path]
    for run in runs:
        script, counted = scripts[run["dir"].path], section(ArtifactInfo, run["results"], "artifact").bytes_code
        if script != first or len(script) != counted:
            raise GolfError(f"{run['dir'].train_script} ({len(script):,} B) is not the script the other seeds ran "
                            f"or not the {counted:,} B this run counted; re-run the seed (its job dir was altered)")
    return first


def verified_artifact(run: dict) -> Path:
    """The seed's artifact, after checking it is the file its results.json counted."""
    a = section(ArtifactInfo, run["results"], "artifact")
    path = run["dir"].artifact
    blob = path.read_bytes()
    if len(blob) != a.bytes_model or payload_sha256(blob) != a.sha256:
        raise GolfError(f"{path} is {len(blob):,} B with sha256 {payload_sha256(blob)[:12]}..., but the run "
                        f"counted {a.bytes_model:,} B with sha256 {a.sha256[:12]}...; the artifact was replaced, "
                        f"re-run the seed")
    return path


def submission(runs: list[dict], script: bytes, name: str, author: str, github_id: str) -> dict:
    res = [run["results"] for run in runs]
    metrics = [section(Metrics, r, "metrics") for r in res]
    arts = [section(ArtifactInfo, r, "artifact") for r in res]
    timing = [section(Timing, r, "timing") for r in res]
    bpbs = [m.val_bpb for m in metrics]
    env = res[0].get("env", {})
    return {
        "author": author, "github_id": github_id, "name": name,
        "blurb": f"golf {res[0]['choices'].get('experiment') or res[0]['choices'].get('arch')}: "
                 f"{HEADLINES[metrics[0].headline]} of {len(res)} seeds",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "val_loss": statistics.fmean(m.val_loss for m in metrics), "val_bpb": statistics.fmean(bpbs),
        "bytes_total": max(a.bytes_total for a in arts), "bytes_code": len(script),
        "val_bpb_std": statistics.stdev(bpbs) if len(bpbs) > 1 else 0.0,  # sample std (n - 1), as records report
        "metric": metrics[0].headline, "seeds": [r["seed"] for r in res],
        "seed_results": {str(r["seed"]): {"val_bpb": m.val_bpb, "val_loss": m.val_loss, "bytes_total": a.bytes_total,
                                          "bytes_model": a.bytes_model, "steps": m.steps, "train_s": t.train_s,
                                          "eval_s": t.eval_s, "artifact_sha256": a.sha256}
                         for r, m, a, t in zip(res, metrics, arts, timing)},
        "hardware": {"gpus": env.get("gpus") or [], "world_size": runs[0]["config"]["launcher"]["nproc"]
                     * runs[0]["config"]["launcher"]["nnodes"], "torch": env.get("torch"), "cuda": env.get("cuda")},
        "compliance": {"compliant": all(r["compliance"]["compliant"] for r in res),
                       "failed": {str(r["seed"]): r["compliance"].get("failed", []) for r in res}},
        "golf": {"git": res[0].get("git"), "choices": res[0].get("choices"), "data": res[0].get("data")},
    }


def requirements(config: dict) -> str:
    needed = ["torch", "numpy", "sentencepiece"]
    for used in (config["quant"]["compressor"], config.get("export", {}).get("code")):
        if used in ("zstd", "brotli") and used not in needed:
            needed.append(used)
    return "".join(REQUIREMENTS[n] + "\n" for n in needed)


def run_command(config: dict, results: dict) -> str:
    env = {"DATA_PATH": config["data"]["root"], "TOKENIZER_PATH": config["data"]["tokenizer_path"],
           "SEED": results["seed"], "RUN_ID": f"seed{results['seed']}"}
    nproc = config["launcher"]["nproc"]
    launch = f"torchrun --standalone --nproc_per_node={nproc} {SCRIPT_NAME}" if nproc > 1 else f"python {SCRIPT_NAME}"
    return " ".join(f"{k}={shlex.quote(str(v))}" for k, v in env.items()) + " " + launch


def readme(sub: dict, runs: list[dict]) -> str:
    config, first = runs[0]["config"], runs[0]["results"]
    rows = "\n".join(f"| {seed} | {s['val_bpb']:.8f} | {s['val_loss']:.6f} | {s['bytes_total']:,} | "
                     f"{s['bytes_model']:,} | {s['steps']} | {s['train_s']:.1f} | {s['eval_s']:.1f} |"
                     for seed, s in sub["seed_results"].items())
    checks = runs[0]["results"]["compliance"]["checks"]

    def verdict(check: str) -> str:
        passed = all(run["results"]["compliance"]["checks"].get(check, {}).get("pass") for run in runs)
        return f"check `{check}`: {'pass' if passed else 'FAIL'} on every seed"

    conditions = "\n".join(f"- **{label}**: {what}" + (f"; {verdict(check)}" if check else "")
                           for label, check, what in CONDITIONS)
    shown = {c for _, c, _ in CONDITIONS}
    budget = "\n".join(f"- {verdict(name)} (seed {first['seed']}: {check.get('value')})"
                       for name, check in checks.items() if name not in shown)
    return f"""# {sub['name']}

**val_bpb {sub['val_bpb']:.8f} ± {sub['val_bpb_std']:.8f}** (mean ± sample std over {len(runs)} seeds;
{HEADLINES[sub['metric']]}, as the leaderboard reports this protocol), val_loss {sub['val_loss']:.6f} nats.
Artifact: at most {sub['bytes_total']:,} of 16,000,000 bytes (model + `{SCRIPT_NAME}` {sub['bytes_code']:,} B, the
code every seed counted). Compliant on every seed: {'yes' if sub['compliance']['compliant'] else 'NO'}.
Hardware: {', '.join(sub['hardware']['gpus']) or 'CPU'} (world size {sub['hardware']['world_size']}), torch
{sub['hardware']['torch']}; golf commit {(sub['golf']['git'] or {}).get('commit')}.

| seed | val_bpb | val_loss (nats) | bytes_total | bytes_model | steps | train s | eval s |
|---|---|---|---|---|---|---|---|
{rows}

## Compliance (issue #1017's conditions, computed from what each run observed)

{conditions}

Budgets and data:
{budget}

## Reproduce

`{SCRIPT_NAME}` is self-contained (it embeds the golf code the run used; it needs only the packages of
`requirements.txt`). Each seed, as it ran:

```bash
{run_command(config, first)}
```

It trains under the cap, quantizes, writes `{ARTIFACT}`, reloads and scores it, and prints the official final
lines; the last line is the headline, `final val_bpb:{first['metrics']['val_bpb']:.8f}` for seed {first['seed']}.
With `SCORE_ARTIFACT=<path to an artifact>` it only scores that artifact with the run's protocol.

Files: `submission.json`, `{SCRIPT_NAME}`, `requirements.txt`, `train_seed<N>.log`.
"""


def export(paths: list[Path], out: Path, name: str | None, author: str, github_id: str,
           with_artifacts: bool = False) -> dict:
    runs = load_runs(find_job_dirs(paths))
    script = record_script(runs)
    artifacts = [verified_artifact(run) for run in runs] if with_artifacts else []
    if out.exists() and any(out.iterdir()):
        raise GolfError(f"{out} exists and is not empty; export into a new folder (or delete it first)")
    name = name or runs[0]["config"]["run_name"].rsplit("-s", 1)[0]
    sub = submission(runs, script, name, author, github_id)
    out.mkdir(parents=True, exist_ok=True)
    (out / SCRIPT_NAME).write_bytes(script)
    (out / "requirements.txt").write_text(requirements(runs[0]["config"]), encoding="utf-8")
    for run in runs:
        shutil.copyfile(run["dir"].train_log, out / f"train_seed{run['results']['seed']}.log")
    for run, artifact in zip(runs, artifacts):
        (out / "artifacts").mkdir(exist_ok=True)
        shutil.copyfile(artifact, out / "artifacts" / f"seed{run['results']['seed']}.golf")
    write_json(out / "submission.json", sub)
    (out / "README.md").write_text(readme(sub, runs), encoding="utf-8")
    return sub


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m golf.export", description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", type=Path, help="job dirs of one config (or a folder holding only them)")
    p.add_argument("--out", type=Path, required=True, help="the record folder to write (new or empty)")
    p.add_argument("--name", help="record name (default: the run name without its seed)")
    p.add_argument("--author", default="", help="submission.json author")
    p.add_argument("--github-id", default="", help="submission.json github_id")
    p.add_argument("--with-artifacts", action="store_true", help="also copy each seed's verified artifact")
    args = p.parse_args(argv)
    try:
        sub = export(args.paths, args.out, args.name, args.author, args.github_id, args.with_artifacts)
    except GolfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{sub['name']}: val_bpb {sub['val_bpb']:.8f} ± {sub['val_bpb_std']:.8f} ({sub['metric']}) over seeds "
          f"{sub['seeds']}, bytes_total {sub['bytes_total']:,} (code {sub['bytes_code']:,}); wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
