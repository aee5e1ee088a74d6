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
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from golf.config.compose import register_schemas
from golf.config.schema import GolfConfig
from golf.config.validate import eval_seq_len, validate
from golf.data.loader import load_validation_tokens
from golf.data.tokenizer import load_tokenizer
from golf.errors import ArtifactError, ConfigError, GolfError
from golf.eval.bpb import build_byte_tables
from golf.logging.jsonio import write_json
from golf.models.registry import load_model
from golf.ttt.plot import plot_snr_scales
from golf.ttt.session import EvalInputs, sliding_eval, test_time_train
from golf.utils.runtime import seed_everything, setup_runtime, teardown_runtime

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ("ttt", "eval")


def compose_config(job_dir: Path, overrides: list[str]) -> GolfConfig:
    """The job's config with the given `ttt=`/`eval=` options and `ttt.*`/`eval.*` keys applied."""
    bad = [o for o in overrides if o.split("=")[0].split(".")[0] not in GROUPS or "=" not in o]
    if bad:
        raise ConfigError(f"cannot override {bad} here; only ttt=NAME, eval=NAME, ttt.KEY=VALUE and eval.KEY=VALUE "
                          f"apply to a finished job")
    job = OmegaConf.load(job_dir / "config.yaml")
    register_schemas()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        group_choices = [o for o in overrides if o.split("=")[0] in GROUPS]
        composed = compose("config", overrides=group_choices)
    for group in GROUPS:
        if any(o.startswith(f"{group}=") for o in overrides):
            job[group] = OmegaConf.to_container(composed[group], resolve=True)
    job.launcher = {"name": "inproc", "nproc": 1}
    job = OmegaConf.merge(job, OmegaConf.from_dotlist([o for o in overrides if "." in o.split("=")[0]]))
    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(GolfConfig), job))
    validate(cfg)
    return cfg


def run(job_dir: Path, overrides: list[str], tag: str | None) -> dict:
    cfg = compose_config(job_dir, overrides)
    rt = setup_runtime(cfg.train)
    try:
        seed_everything(cfg.seed)
        sp = load_tokenizer(cfg.data.tokenizer_path)
        seq_len = eval_seq_len(cfg)
        tables = build_byte_tables(sp, cfg.arch.vocab_size).to(rt.device)
        inputs = EvalInputs(load_validation_tokens(cfg.data.val_pattern, seq_len), tables, seq_len, int(sp.bos_id()),
                            cfg, rt)
        base = sliding_eval(load_model(job_dir / "artifact" / "model.golf", rt.device, rt.autocast_dtype), inputs)
        out = {"job_dir": str(job_dir), "ttt": cfg.ttt.name, "eval": cfg.eval.name.value, "overrides": overrides,
               "seed": cfg.seed, "stride": inputs.stride, "seq_len": seq_len,
               "base": {k: base[k] for k in ("val_bpb", "val_loss", "tokens", "bytes", "unk_targets", "seconds")}}
        if cfg.ttt.mode.value != "none":
            float_model = None
            if cfg.ttt.mode.value == "prequant":
                prequant = job_dir / "prequant.pt"
                if not prequant.exists():
                    raise ArtifactError(f"{prequant} is missing; ttt=prequant_* needs the unquantized weights "
                                        f"(rerun the job with quant.save_prequant=true)")
                float_model = load_model(job_dir / "artifact" / "model.golf", rt.device, rt.autocast_dtype)
                float_model.load_state_dict(torch.load(prequant, map_location=rt.device, weights_only=True))
            t0 = time.perf_counter()
            ttt = test_time_train(load_model(job_dir / "artifact" / "model.golf", rt.device, rt.autocast_dtype), inputs, float_model)
            out["ttt_result"] = {**ttt, "wall_s": time.perf_counter() - t0}
        name = tag or cfg.ttt.name
        if rt.is_main:
            target = job_dir / "ttt" / f"{name}.json"
            snr = out.get("ttt_result", {}).get("snr")
            if snr and snr["steps"]:
                out["snr_plot"] = str(plot_snr_scales(snr, job_dir / "ttt" / f"{name}_snr.png", f"ttt={name}"))
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
