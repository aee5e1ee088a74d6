"""An official record folder from the job dirs of one config: `python -m golf.export <job dirs> --out DIR`.

Writes submission.json (val_bpb mean and std, seed_results, bytes_total, bytes_code, hardware,
compliance), README.md (the table and the commands), each seed's train log and artifact, the
resolved config, `score_artifact.py`: one self-contained script that rebuilds the model from an
artifact and scores it the way the run did, and for TTT runs `ttt.json`, the run's TTT settings. The
script is regenerated from the code and must be byte for byte the size the runs reported as
bytes_code; if the code changed since the runs, the export stops.
"""

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

from omegaconf import OmegaConf

from golf.config.schema import GolfConfig
from golf.errors import GolfError
from golf.logging.jsonio import write_json
from golf.logging.results import RESULTS_FILE
from golf.quant.code_bytes import SCRIPT_NAME, evaluation_script

TTT_SETTINGS = "ttt.json"
# Keys that may differ between the seeds of one config: where and under which name a job ran.
PER_JOB_KEYS = ("seed", "run_name", "sweep_name", "paths", "logger")


def find_job_dirs(paths: list[Path]) -> list[Path]:
    dirs = []
    for path in paths:
        found = [path] if (path / RESULTS_FILE).exists() else sorted(p.parent for p in path.rglob(RESULTS_FILE))
        if not found:
            raise GolfError(f"no {RESULTS_FILE} in or under {path}; pass the job dirs of one config")
        dirs.extend(found)
    return list(dict.fromkeys(dirs))


def load_runs(dirs: list[Path]) -> list[dict]:
    """The completed runs of one config (anything else is an error naming the offending dir)."""
    runs = []
    for job_dir in dirs:
        results = json.loads((job_dir / RESULTS_FILE).read_text(encoding="utf-8"))
        if results.get("status") != "completed":
            error = results.get("error") or {}
            raise GolfError(f"{job_dir} is {results.get('status')} ({error.get('message', 'no error recorded')}); "
                            f"export only completed runs")
        config = OmegaConf.to_container(OmegaConf.load(job_dir / "config.yaml"))
        runs.append({"dir": job_dir, "results": results, "config": config})
    shared = [{k: v for k, v in run["config"].items() if k not in PER_JOB_KEYS} for run in runs]
    for run, config in zip(runs, shared):
        if config != shared[0]:
            diff = sorted(k for k in config if config[k] != shared[0].get(k))
            raise GolfError(f"{run['dir']} differs from {runs[0]['dir']} in {', '.join(diff)}; a record is one "
                            f"config over seeds, export each config separately")
    seeds = [run["results"]["seed"] for run in runs]
    if len(set(seeds)) != len(seeds):
        raise GolfError(f"seeds {seeds} repeat; pass each seed's job dir once")
    return sorted(runs, key=lambda run: seeds.index(run["results"]["seed"]))


def scoring_script(runs: list[dict]) -> bytes:
    """The script the runs counted, regenerated; refuses when its size is not their bytes_code."""
    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(GolfConfig), runs[0]["config"]))
    script, files = evaluation_script(cfg)
    for run in runs:
        a = run["results"]["artifact"]
        if a["bytes_code"] != len(script) or a.get("code_files") != files:
            changed = sorted(set(files.items()) ^ set((a.get("code_files") or {}).items()))
            raise GolfError(f"{run['dir']} counted bytes_code={a['bytes_code']:,} but the code now gives "
                            f"{len(script):,} (changed: {', '.join(sorted({n for n, _ in changed})) or 'the script'}); "
                            f"export from the commit of the run (git {run['results'].get('git', {}).get('commit')})")
    return script


def train_command(results: dict) -> str:
    kept = [o for o in results.get("overrides", []) if not o.startswith(("seed=", "paths.", "hydra.", "+sweep="))]
    return "python -m golf.train " + " ".join(kept + [f"seed={results['seed']}"])


def legal_ttt(config: dict) -> bool:
    """Whether the run's headline is a TTT score (pre-quant TTT never is)."""
    return config["ttt"]["mode"] in ("stream", "lora")


def sliding_stride(config: dict) -> int:
    """The run's sliding stride, or 0 when its windows are the non-overlapping eval's."""
    e = config["eval"]
    return e["stride"] if e.get("stride") and e["stride"] != (e["seq_len"] or config["train"]["seq_len"]) else 0


def score_command(config: dict, artifact: str, seed: int) -> str:
    d, e, t = config["data"], config["eval"], config["train"]
    cmd = (f"python {SCRIPT_NAME} {artifact} --val-pattern '{d['val_pattern']}' --tokenizer {d['tokenizer_path']} "
           f"--seq-len {e['seq_len'] or t['seq_len']}")
    if e.get("max_seqs"):
        cmd += f" --max-seqs {e['max_seqs']}"
    if sliding_stride(config):
        cmd += f" --stride {sliding_stride(config)}"
    if legal_ttt(config):
        cmd += f" --ttt {TTT_SETTINGS} --seed {seed}"
    return cmd + (" --precision bf16" if t.get("precision") == "bf16" else "")


def submission(runs: list[dict], script: bytes, name: str) -> dict:
    res = [run["results"] for run in runs]
    bpbs = [r["metrics"]["val_bpb"] for r in res]
    losses = [r["metrics"]["val_loss"] for r in res]
    worst = max(res, key=lambda r: r["artifact"]["bytes_total"])
    env = res[0].get("env", {})
    return {
        "name": name, "val_bpb": statistics.fmean(bpbs),
        "val_bpb_std": statistics.stdev(bpbs) if len(bpbs) > 1 else 0.0,
        "val_loss": statistics.fmean(losses), "seeds": [r["seed"] for r in res],
        "seed_results": [{"seed": r["seed"], "val_bpb": r["metrics"]["val_bpb"], "val_loss": r["metrics"]["val_loss"],
                          "bytes_total": r["artifact"]["bytes_total"], "bytes_model": r["artifact"]["bytes_model"],
                          "steps": r["metrics"].get("steps"), "train_s": r["timing"].get("train_s"),
                          "eval_s": r["timing"].get("eval_s"), "artifact_sha256": r["artifact"].get("sha256")}
                         for r in res],
        "bytes_total": worst["artifact"]["bytes_total"], "bytes_model": worst["artifact"]["bytes_model"],
        "bytes_code": len(script), "limit_bytes": worst["artifact"]["limit_bytes"],
        "hardware": {"gpus": env.get("gpus") or [], "world_size": runs[0]["config"]["launcher"]["nproc"],
                     "hostname": env.get("hostname"), "torch": env.get("torch"), "cuda": env.get("cuda")},
        "compliance": {"compliant": all(r["compliance"]["compliant"] for r in res),
                       "per_seed": {str(r["seed"]): r["compliance"] for r in res}},
        "choices": res[0].get("choices"), "git": res[0].get("git"), "data": res[0].get("data"),
    }


def printed_score(config: dict) -> tuple[str, str]:
    """What the record's score command prints, and the results.json metric it equals."""
    if legal_ttt(config):
        return (f"the score-first ttt={config['ttt']['name']} score, the headline (from a multi-GPU run, equal to "
                f"about 1e-6: one process sums in another order)", "val_bpb")
    if config["eval"]["name"] == "sliding" and sliding_stride(config):
        return f"the sliding eval (stride {sliding_stride(config)})", "val_bpb_sliding"
    return "the non-overlapping round trip of the artifact, the headline", "val_bpb_postquant"


def readme(sub: dict, runs: list[dict]) -> str:
    config = runs[0]["config"]
    rows = "\n".join(f"| {s['seed']} | {s['val_bpb']:.8f} | {s['val_loss']:.6f} | {s['bytes_total']:,} | "
                     f"{s['steps']} | {s['train_s']:.1f} | {s['eval_s']:.1f} |" for s in sub["seed_results"])
    first = sub["seed_results"][0]["seed"]
    what, metric = printed_score(config)
    ttt_file = f", `{TTT_SETTINGS}` (the run's TTT settings)" if legal_ttt(config) else ""
    return f"""# {sub['name']}

val_bpb **{sub['val_bpb']:.8f} ± {sub['val_bpb_std']:.8f}** (mean ± std over {len(runs)} seeds),
bytes_total {sub['bytes_total']:,} / {sub['limit_bytes']:,} (model {sub['bytes_model']:,} + code {sub['bytes_code']:,}),
compliant: {'yes' if sub['compliance']['compliant'] else 'no'}. Hardware: {', '.join(sub['hardware']['gpus']) or 'CPU'}
(world size {sub['hardware']['world_size']}), torch {sub['hardware']['torch']},
golf commit {(sub['git'] or {}).get('commit')}.

| seed | val_bpb | val_loss (nats) | bytes_total | steps | train s | eval s |
|---|---|---|---|---|---|---|
{rows}

## Reproduce

Train (one seed; `-m seed={','.join(str(s) for s in sub['seeds'])}` for all):

```bash
{train_command(runs[0]['results'])}
```

Score an artifact with the self-contained script (`{SCRIPT_NAME}`, {sub['bytes_code']:,} bytes = bytes_code;
it embeds every golf module the evaluation needs and only requires torch, numpy and sentencepiece):

```bash
{score_command(config, f'artifacts/seed{first}.golf', first)}
```

It prints {what}: `val_bpb {runs[0]['results']['metrics'][metric]:.8f}` for seed {first} (results.json
`metrics.{metric}`).

Files: `submission.json`, `config.yaml` (resolved config of seed {first}), `train_seed<N>.log`,
`artifacts/seed<N>.golf` (the exact bytes counted), `{SCRIPT_NAME}`{ttt_file}.
"""


def export(paths: list[Path], out: Path, name: str | None = None) -> dict:
    runs = load_runs(find_job_dirs(paths))
    script = scoring_script(runs)
    name = name or runs[0]["config"]["run_name"].rsplit("-s", 1)[0]
    sub = submission(runs, script, name)
    (out / "artifacts").mkdir(parents=True, exist_ok=True)
    (out / SCRIPT_NAME).write_bytes(script)
    for run in runs:
        seed = run["results"]["seed"]
        shutil.copyfile(run["dir"] / "train.log", out / f"train_seed{seed}.log")
        shutil.copyfile(run["dir"] / run["results"]["artifact"]["path"], out / "artifacts" / f"seed{seed}.golf")
    shutil.copyfile(runs[0]["dir"] / "config.yaml", out / "config.yaml")
    if legal_ttt(runs[0]["config"]):
        write_json(out / TTT_SETTINGS, runs[0]["config"]["ttt"])
    write_json(out / "submission.json", sub)
    (out / "README.md").write_text(readme(sub, runs), encoding="utf-8")
    return sub


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m golf.export", description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", type=Path, help="job dirs of one config (or a folder holding only them)")
    p.add_argument("--out", type=Path, required=True, help="the record folder to write")
    p.add_argument("--name", help="record name (default: the run name without its seed)")
    args = p.parse_args(argv)
    try:
        sub = export(args.paths, args.out, args.name)
    except GolfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{sub['name']}: val_bpb {sub['val_bpb']:.8f} ± {sub['val_bpb_std']:.8f} over seeds {sub['seeds']}, "
          f"bytes_total {sub['bytes_total']:,} (code {sub['bytes_code']:,}); wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
