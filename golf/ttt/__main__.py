"""Run an eval / TTT protocol on a finished job's artifact, without retraining.

    python -m golf.ttt <job_dir> ttt=sgd [eval=sliding64] [ttt.lr=0.001 ...] [--tag NAME]

Takes the job's resolved config, swaps in the requested `ttt` / `eval` options (composed from golf/conf/
like the training CLI), rebuilds the model from `artifact/model.golf` and scores it with the same code
the training job uses. `ttt=prequant_*` starts from the job's unquantized `prequant.pt`. Writes
`<job_dir>/ttt/<name>.json` (and `<name>_snr.png`); works under torchrun as well.
"""

import argparse
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from golf.config.arch import ArchConfig
from golf.config.compose import compose, typed
from golf.config.derived import eval_batch_seqs
from golf.config.schema import GolfConfig
from golf.config.validate import validate
from golf.errors import ArtifactError, ConfigError, GolfError
from golf.eval import scoring
from golf.eval.context import load_eval_context
from golf.jobdir import JobDir
from golf.logging.jsonio import write_json
from golf.logging.snr_plot import plot_snr
from golf.models.registry import load_model
from golf.output_dirs import plain_name
from golf.ttt import session
from golf.utils.runtime import seed_everything, setup_runtime, teardown_runtime

GROUPS = ("ttt", "eval")


def compose_config(jd: JobDir, overrides: list[str]) -> GolfConfig:
    """The job's config with the given `ttt=`/`eval=` options and `ttt.*`/`eval.*` keys applied."""
    bad = [o for o in overrides if o.split("=")[0].split(".")[0] not in GROUPS or "=" not in o]
    if bad:
        raise ConfigError(f"cannot override {bad} here; only ttt=NAME, eval=NAME, ttt.KEY=VALUE and eval.KEY=VALUE "
                          f"apply to a finished job")
    job = OmegaConf.create(jd.resolved_config())
    composed = compose([o for o in overrides if o.split("=")[0] in GROUPS])
    for group in GROUPS:
        if any(o.startswith(f"{group}=") for o in overrides):
            job[group] = OmegaConf.to_container(composed[group], resolve=True)
    job.launcher = {"name": "inproc", "nproc": 1}
    cfg = typed(OmegaConf.merge(job, OmegaConf.from_dotlist([o for o in overrides if "." in o.split("=")[0]])))
    validate(cfg)
    return cfg


def run(job_dir: Path, overrides: list[str], tag: str | None) -> dict:
    jd = JobDir(job_dir)
    cfg = compose_config(jd, overrides)
    rt = setup_runtime(cfg.train)
    try:
        seed_everything(cfg.seed)
        ctx = load_eval_context(cfg, rt, eval_batch_seqs(cfg, rt.world_size))
        seq_len = ctx.seq_len
        stride = cfg.eval.stride or seq_len

        def artifact_model():
            return load_model(jd.artifact, rt.device, rt.autocast_dtype, arch_type=ArchConfig)

        tilt = cfg.eval.ngram_tilt
        if tilt.enabled and cfg.ttt.mode == "none":  # the tilt applies to the base eval when no TTT runs
            from golf.eval.ngram_tilt import with_tilt

            t0 = time.perf_counter()
            base = scoring.sliding_eval(artifact_model(), with_tilt(ctx, tilt), stride)
            base["seconds"] = time.perf_counter() - t0
        else:
            base = scoring.sliding_eval(artifact_model(), ctx, stride)
        out = {"job_dir": str(jd.path), "ttt": cfg.ttt.name, "eval": str(cfg.eval.name), "overrides": overrides,
               "seed": cfg.seed, "stride": stride, "seq_len": seq_len,
               "base": {k: base[k] for k in ("val_bpb", "val_loss", "tokens", "bytes", "unk_targets", "seconds",
                                             "checks")}}
        if cfg.ttt.mode != "none":
            t0 = time.perf_counter()
            if cfg.ttt.mode == "prequant":
                if not jd.prequant.exists():
                    raise ArtifactError(f"{jd.prequant} is missing; ttt=prequant_* needs the unquantized weights "
                                        f"(rerun the job with quant.save_prequant=true)")
                float_model = artifact_model()
                float_model.load_state_dict(torch.load(jd.prequant, map_location=rt.device, weights_only=True))
                ttt = session.prequant_ttt(float_model, ctx, cfg, stride)
            else:
                ttt = session.test_time_train(artifact_model(), ctx, cfg.ttt, stride, cfg.seed, tilt=tilt)
            out["ttt_result"] = {**ttt, "wall_s": time.perf_counter() - t0}
        name = tag or cfg.ttt.name
        if rt.is_main:
            target = jd.ttt_dir / f"{name}.json"
            snr = {"ttt": out.get("ttt_result", {}).get("snr")}
            plot = plot_snr(snr, jd.ttt_dir / f"{name}_snr.png", f"ttt={name}")
            if plot is not None:
                out["snr_plot"] = str(plot)
            target.parent.mkdir(parents=True, exist_ok=True)
            write_json(target, out)
            out["path"] = str(target)
        return out
    finally:
        teardown_runtime()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m golf.ttt", description=__doc__.split("\n\n")[0])
    parser.add_argument("job_dir", type=Path)
    parser.add_argument("overrides", nargs="*", help="ttt=NAME eval=NAME ttt.KEY=VALUE eval.KEY=VALUE")
    parser.add_argument("--tag", help="output name under <job_dir>/ttt/ (default: the ttt name)")
    args = parser.parse_args(argv)
    try:
        if args.tag is not None:
            plain_name(args.tag, "--tag")  # it names a file under <job_dir>/ttt/
        out = run(args.job_dir.resolve(), args.overrides, args.tag)
    except GolfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    line = f"golf.ttt | base {out['base']['val_bpb']:.6f}"
    if "ttt_result" in out:
        t = out["ttt_result"]
        line += (f" | ttt={out['ttt']} {t['val_bpb']:.6f} ({t['val_bpb'] - out['base']['val_bpb']:+.6f}) "
                 f"| {t['seconds']:.1f}s | compliant: {'yes' if t['compliant'] else 'NO'}")
        if t.get("memorization"):
            line += f" | sliding on adapted {t['memorization']['sliding_adapted_bpb']:.6f}"
    print(line)


if __name__ == "__main__":
    main()
