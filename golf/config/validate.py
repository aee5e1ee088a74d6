"""Cross-field validation: every rule names the key, its value, the constraint and a fix.

Runs in the Hydra parent before any data is read or any process is spawned. Each package checks its own
section (golf.models.checks, golf.optim.checks, golf.quant.checks, golf.ttt.checks); the rules that
span sections (batch shapes over the world size, launcher, budget, data vs model) live here.
"""

from golf.config.derived import eval_seq_len, grad_accum_steps
from golf.config.job import LauncherName
from golf.config.schema import GolfConfig
from golf.errors import ConfigError
from golf.models.checks import arch_errors
from golf.optim.checks import recipe_errors
from golf.quant.checks import calibration_errors, quant_errors
from golf.ttt.checks import ttt_eval_errors


def _check_batches(cfg: GolfConfig, world_size: int) -> list[str]:
    t = cfg.train
    if t.seq_len <= 0 or t.batch_tokens <= 0:
        return [f"train.seq_len={t.seq_len} and train.batch_tokens={t.batch_tokens} must be positive"]
    errors = []
    accum = grad_accum_steps(cfg, world_size)
    per_micro = world_size * accum * t.seq_len
    if t.batch_tokens % per_micro:
        errors.append(f"train.batch_tokens={t.batch_tokens} must be a multiple of world_size x grad_accum x seq_len "
                      f"= {world_size} x {accum} x {t.seq_len} = {per_micro}; try train.batch_tokens="
                      f"{max(t.batch_tokens // per_micro, 1) * per_micro}")
    eval_local = cfg.eval.batch_tokens // (world_size * accum)
    if eval_local < eval_seq_len(cfg):
        errors.append(f"eval.batch_tokens={cfg.eval.batch_tokens} leaves {eval_local} tokens per rank and micro-batch, "
                      f"less than one sequence of {eval_seq_len(cfg)}; raise eval.batch_tokens to at least "
                      f"{world_size * accum * eval_seq_len(cfg)}")
    if t.iterations <= 0:
        errors.append(f"train.iterations={t.iterations} must be positive")
    if t.warmup_steps < 0 or t.warmdown_iters < 0:
        errors.append("train.warmup_steps and train.warmdown_iters must be >= 0")
    return errors


def _check_rest(cfg: GolfConfig) -> list[str]:
    errors = []
    if cfg.launcher.nproc < 1:
        errors.append(f"launcher.nproc={cfg.launcher.nproc} must be >= 1")
    if cfg.launcher.name == LauncherName.inproc and cfg.launcher.nproc != 1:
        errors.append(f"launcher.nproc={cfg.launcher.nproc} needs launcher=torchrun; launcher=inproc runs one process")
    if cfg.launcher.nnodes < 1 or (cfg.launcher.nnodes > 1 and cfg.launcher.name != LauncherName.torchrun):
        errors.append(f"launcher.nnodes={cfg.launcher.nnodes} must be >= 1, and > 1 needs launcher=torchrun")
    if not 0 < cfg.quant.clip_percentile <= 100:
        errors.append(f"quant.clip_percentile={cfg.quant.clip_percentile} must be in (0, 100]")
    errors.extend(quant_errors(cfg.quant) + calibration_errors(cfg))
    if cfg.budget.artifact_limit_bytes <= 0:
        errors.append(f"budget.artifact_limit_bytes={cfg.budget.artifact_limit_bytes} must be positive")
    if cfg.arch.vocab_size != cfg.data.vocab_size:
        errors.append(f"arch.vocab_size={cfg.arch.vocab_size} differs from data.vocab_size={cfg.data.vocab_size} "
                      f"(data={cfg.data.name}); set arch.vocab_size={cfg.data.vocab_size} or pick matching data")
    t = cfg.train
    if t.checkpoint_every_steps < 0 or t.checkpoint_every_minutes < 0:
        errors.append(f"train.checkpoint_every_steps={t.checkpoint_every_steps} and train.checkpoint_every_minutes="
                      f"{t.checkpoint_every_minutes} must be >= 0 (0 turns that trigger off)")
    o = cfg.optimizer
    if not 0 <= o.muon_momentum_warmup_start < 1 or not 0 <= o.muon_momentum < 1:
        errors.append("optimizer.muon_momentum and optimizer.muon_momentum_warmup_start must be in [0, 1)")
    return errors


def validate(cfg: GolfConfig) -> None:
    """Raise ConfigError listing every violated rule (not just the first)."""
    world_size = cfg.launcher.nproc * cfg.launcher.nnodes
    errors = (arch_errors(cfg.arch) + _check_batches(cfg, world_size) + _check_rest(cfg) + ttt_eval_errors(cfg)
              + recipe_errors(cfg, world_size))
    if errors:
        raise ConfigError("invalid config: " + "; ".join(errors))
