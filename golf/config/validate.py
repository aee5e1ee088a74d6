"""Cross-field validation: every rule names the key, its value, the constraint and a fix.

Runs in the Hydra parent before any data is read or any process is spawned.
"""

from golf.config.schema import GolfConfig, LauncherName
from golf.errors import ConfigError
from golf.models.registry import ARCHITECTURES
from golf.quant.checks import quant_errors
from golf.ttt.checks import ttt_eval_errors


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(1, n + 1) if n % d == 0)


def grad_accum_steps(cfg: GolfConfig, world_size: int) -> int:
    """The baseline keeps 8 micro-batches per step in total: 8 // world_size on each rank."""
    if cfg.train.grad_accum_steps > 0:
        return cfg.train.grad_accum_steps
    return max(8 // world_size, 1)


def eval_seq_len(cfg: GolfConfig) -> int:
    return cfg.eval.seq_len or cfg.train.seq_len


def _check_arch(a) -> list[str]:
    errors = []
    if a.name not in ARCHITECTURES:
        errors.append(f"arch.name={a.name!r} is not a registered architecture; choose one of {sorted(ARCHITECTURES)}")
    for key in ("vocab_size", "num_layers", "model_dim", "num_heads", "num_kv_heads", "mlp_mult"):
        if getattr(a, key) <= 0:
            errors.append(f"arch.{key}={getattr(a, key)} must be positive")
    if errors:
        return errors
    if a.model_dim % a.num_heads:
        errors.append(f"arch.num_heads={a.num_heads} must divide arch.model_dim={a.model_dim}; "
                      f"try one of {_divisors(a.model_dim)}")
    elif (a.model_dim // a.num_heads) % 2:
        errors.append(f"arch.model_dim/arch.num_heads={a.model_dim // a.num_heads} (head dim) must be even for "
                      f"rotary embeddings; change arch.num_heads or arch.model_dim")
    if a.num_heads % a.num_kv_heads:
        errors.append(f"arch.num_kv_heads={a.num_kv_heads} must divide arch.num_heads={a.num_heads}; "
                      f"try one of {_divisors(a.num_heads)}")
    if a.vocab_size > 65536:
        errors.append(f"arch.vocab_size={a.vocab_size} exceeds 65536, the uint16 shard format's limit")
    if a.logit_softcap <= 0:
        errors.append(f"arch.logit_softcap={a.logit_softcap} must be positive")
    return errors


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
    if not 0 < cfg.quant.clip_percentile <= 100:
        errors.append(f"quant.clip_percentile={cfg.quant.clip_percentile} must be in (0, 100]")
    errors.extend(quant_errors(cfg.quant))
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
    world_size = cfg.launcher.nproc
    errors = _check_arch(cfg.arch) + _check_batches(cfg, world_size) + _check_rest(cfg) + ttt_eval_errors(cfg)
    if errors:
        raise ConfigError("invalid config: " + "; ".join(errors))
