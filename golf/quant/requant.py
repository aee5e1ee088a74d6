"""Re-quantize a finished job without retraining: `python -m golf.quant <job_dir> quant=NAME [key=value ...]`.

Reads the job's unquantized weights (prequant.pt, or the artifact itself when the job ran with
quant=none), exports them with the requested quant config, and scores three models on the job's
val split: the unquantized one, the dequantized weights in memory, and a fresh model rebuilt from
the artifact file. The last two must agree exactly. Everything lands in
`<job_dir>/requant/<quant.name>-<config hash>/` (model.golf + results.json).
"""

import hashlib
import logging
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from golf.artifact import container
from golf.config.derived import eval_batch_seqs
from golf.config.schema import GolfConfig
from golf.config.validate import validate
from golf.errors import ArtifactError, ConfigError, GolfError
from golf.eval.context import load_eval_context
from golf.eval.full import evaluate_full
from golf.jobdir import JobDir
from golf.logging.jsonio import write_json
from golf.models.layers import apply_baseline_precision
from golf.models.registry import build_model, load_model
from golf.output_dirs import plain_name
from golf.quant.quantize import quantize
from golf.record.script import train_script
from golf.utils.runtime import setup_runtime

log = logging.getLogger(__name__)
QUANT_CONF = Path(__file__).resolve().parents[1] / "conf" / "quant"
ALLOWED_PREFIXES = ("quant.", "budget.")


def requant_config(job_dir: Path, overrides: list[str]) -> GolfConfig:
    """The job's resolved config with its quant group (and budget keys) replaced per `overrides`."""
    resolved = OmegaConf.create(JobDir(job_dir).resolved_config())
    dotlist = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} is not key=value; e.g. quant=gptq_int6 quant.bits_mlp=5")
        if key == "quant":
            path = QUANT_CONF / f"{value}.yaml"
            if not path.is_file():
                raise ConfigError(f"quant={value} is not a quant config; choose one of "
                                  f"{sorted(p.stem for p in QUANT_CONF.glob('*.yaml'))}")
            resolved.quant = OmegaConf.load(path)
        elif key.startswith(ALLOWED_PREFIXES):
            dotlist.append(item)
        else:
            raise ConfigError(f"{key} cannot change without retraining; re-quantization takes quant=NAME, "
                              f"quant.* and budget.* overrides")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(GolfConfig), resolved, OmegaConf.from_dotlist(dotlist))
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"invalid override: {str(exc).splitlines()[0]}; see golf/conf/quant/*.yaml for the "
                          "keys") from exc
    validate(cfg)
    return cfg


def prequant_state(job_dir: Path, job_cfg: GolfConfig) -> tuple[dict[str, torch.Tensor], str]:
    path = JobDir(job_dir).prequant
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True), path.name
    if job_cfg.quant.scheme == "none":
        return job_artifact(job_dir).weights, "artifact/model.golf"
    raise ArtifactError(f"{job_dir} has no prequant.pt and its artifact is quantized "
                        f"(quant={job_cfg.quant.name}); re-run training with quant.save_prequant=true or quant=none")


def job_artifact(job_dir: Path) -> container.Contents:
    path = JobDir(job_dir).artifact
    if not path.is_file():
        raise ArtifactError(f"{job_dir} has no artifact/model.golf (the run did not finish its export); re-run it "
                            "with resume=auto")
    return container.unpack(path.read_bytes())


class Requant:
    def __init__(self, job_dir: Path, overrides: list[str]):
        self.job_dir = Path(job_dir)
        self.cfg = requant_config(self.job_dir, overrides)
        plain_name(self.cfg.quant.name, "quant.name")  # it names the output dir under <job_dir>/requant/
        self.overrides = overrides
        self.rt = setup_runtime(self.cfg.train)
        self.ctx = load_eval_context(self.cfg, self.rt, eval_batch_seqs(self.cfg, 1))

    def model_from(self, state: dict[str, torch.Tensor]) -> torch.nn.Module:
        model = build_model(self.cfg.arch)
        model.load_state_dict(state, strict=True)
        return self.prepare(model)

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.rt.autocast_dtype == torch.bfloat16:
            apply_baseline_precision(model)
        return model.to(self.rt.device)

    def evaluate(self, model) -> dict:
        return evaluate_full(model, self.ctx)

    def out_dir(self) -> Path:
        quant = OmegaConf.to_yaml(OmegaConf.structured(self.cfg.quant))
        digest = hashlib.sha256(quant.encode()).hexdigest()[:8]
        return JobDir(self.job_dir).requant_dir / f"{self.cfg.quant.name}-{digest}"

    def run(self) -> dict:
        job_cfg = JobDir(self.job_dir).load_config()
        state, source = prequant_state(self.job_dir, job_cfg)
        model = self.model_from(state)
        prequant = self.evaluate(model)
        b = self.cfg.budget
        bytes_code = len(train_script(self.cfg)[0])  # the record script of the new quant config
        # the run's step state (recurrence on, QAT bits, steps) travels with the weights into the new artifact
        step_state = job_artifact(self.job_dir).step_state
        exported = quantize(model, self.cfg, b.artifact_limit_bytes - bytes_code, self.rt.autocast_dtype,
                            step_state=step_state)
        in_memory = self.evaluate(self.model_from(exported.state))
        out = self.out_dir()
        path = out / "model.golf"
        container.write(path, exported.blob)
        t0 = time.perf_counter()
        reloaded = self.evaluate(load_model(path, self.rt.device, self.rt.autocast_dtype))
        if reloaded["val_bpb"] != in_memory["val_bpb"]:
            raise GolfError(f"round trip mismatch: in-memory val_bpb {in_memory['val_bpb']!r} vs reloaded "
                            f"{reloaded['val_bpb']!r}; the artifact does not reload to the exported weights (bug)")
        total = len(exported.blob) + bytes_code
        result = {
            "job_dir": str(self.job_dir), "weights_from": source, "overrides": self.overrides,
            "quant": OmegaConf.to_container(OmegaConf.structured(self.cfg.quant), enum_to_str=True),
            "export": exported.info,
            "artifact": {"bytes_total": total, "bytes_model": len(exported.blob), "bytes_code": bytes_code,
                         "limit_bytes": b.artifact_limit_bytes, "headroom_bytes": b.artifact_limit_bytes - total,
                         "sha256": container.payload_sha256(exported.blob), "path": str(path)},
            "metrics": {"val_bpb_prequant": prequant["val_bpb"], "val_bpb_in_memory": in_memory["val_bpb"],
                        "val_bpb": reloaded["val_bpb"], "val_loss": reloaded["val_loss"],
                        "quant_penalty_bpb": reloaded["val_bpb"] - prequant["val_bpb"],
                        "val_tokens": reloaded["tokens"]},
            "timing": {"quant_s": exported.info["quant_s"], "eval_s": round(time.perf_counter() - t0, 3)},
        }
        write_json(out / "results.json", result)
        if total > b.artifact_limit_bytes and b.enforce_artifact_limit:
            raise ArtifactError(f"artifact {total:,} B exceeds the {b.artifact_limit_bytes:,} B limit by "
                                f"{total - b.artifact_limit_bytes:,} B (quant={self.cfg.quant.name}); set "
                                f"quant.fit_budget=true, use fewer bits (quant.bits_mlp=5) or shrink the model")
        return result


def summary(r: dict) -> str:
    a, m = r["artifact"], r["metrics"]
    return (f"golf.quant | {r['quant']['name']} | val_bpb {m['val_bpb']:.8f} (prequant {m['val_bpb_prequant']:.8f}, "
            f"{m['quant_penalty_bpb']:+.5f}) | bytes_total {a['bytes_total']:,} / {a['limit_bytes']:,} "
            f"(headroom {a['headroom_bytes']:,}) | quant {r['timing']['quant_s']:.1f}s | {a['path']}")
