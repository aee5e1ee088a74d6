"""Cross-field validation: every rule names the key, its value, the constraint and a fix.

Runs in the Hydra parent before any data is read or any process is spawned.
"""

import itertools

from golf.config.schema import GolfConfig, LauncherName
from golf.errors import ConfigError
from golf.models.registry import ARCHITECTURES
from golf.optim.muon import POLAR_EXPRESS_COEFFS
from golf.optim.schedule import shape_stages
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
    return errors + _check_arch_options(a)


def _check_layer_list(key: str, layers: list[int], num_blocks: int) -> list[str]:
    bad = [i for i in layers if not 0 <= i < num_blocks]
    if bad or len(set(layers)) != len(layers):
        return [(f"arch.{key}={list(layers)} must list distinct physical block indices in [0, {num_blocks - 1}]; "
                 f"e.g. arch.{key}=[{num_blocks - 1}]")]
    return []


def _check_arch_options(a) -> list[str]:
    """Shapes and option combinations of the architecture components (golf.models)."""
    errors = []
    num_blocks = a.ebls_blocks or a.num_layers
    head_dim = a.model_dim // a.num_heads
    if not 0 <= a.bos_id < a.vocab_size:
        errors.append(f"arch.bos_id={a.bos_id} must be a token id in [0, {a.vocab_size - 1}]; the official "
                      f"SentencePiece BOS is 1")
    if a.mlp_hidden < 0:
        errors.append(f"arch.mlp_hidden={a.mlp_hidden} must be positive, or 0 for arch.mlp_mult x arch.model_dim")
    if a.mlp.value == "leaky_relu2" and not 0 < a.mlp_leaky_slope < 1:
        errors.append(f"arch.mlp_leaky_slope={a.mlp_leaky_slope} must be in (0, 1) for arch.mlp=leaky_relu2 "
                      f"(slope 0 is arch.mlp=relu2)")
    if a.rope_dims < 0 or a.rope_dims % 2 or a.rope_dims > head_dim:
        errors.append(f"arch.rope_dims={a.rope_dims} must be even and in [0, head dim {head_dim}] (0: rotate all); "
                      f"e.g. arch.rope_dims={min(16, head_dim)}")
    elif a.rope_ntk_train_len < 0 or (a.rope_ntk_train_len and (a.rope_dims or head_dim) < 4):
        errors.append(f"arch.rope_ntk_train_len={a.rope_ntk_train_len} must be >= 0 (0: off), and NTK scaling needs "
                      f"at least 4 rotated dims")
    errors += _check_layer_list("xsa_layers", a.xsa_layers, num_blocks)
    errors += _check_layer_list("value_embed_layers", a.value_embed_layers, num_blocks)
    if a.value_embed_dim < 0 or bool(a.value_embed_dim) != bool(a.value_embed_layers):
        errors.append(f"arch.value_embed_dim={a.value_embed_dim} and "
                      f"arch.value_embed_layers={list(a.value_embed_layers)} go together: set both "
                      f"(e.g. 128 and [{num_blocks - 2}, {num_blocks - 1}]) or neither")
    if a.bigram_buckets < 0 or (a.bigram_buckets and (a.bigram_dim <= 0 or a.bigram_buckets < 2)):
        errors.append(f"arch.bigram_buckets={a.bigram_buckets} must be 0 (off) or >= 2 with arch.bigram_dim="
                      f"{a.bigram_dim} > 0")
    elif a.bigram_buckets and (a.bigram_init_std < 0 or a.bigram_scale_init < 0):
        errors.append(f"arch.bigram_init_std={a.bigram_init_std} and arch.bigram_scale_init={a.bigram_scale_init} "
                      f"must be >= 0")
    elif a.bigram_buckets and a.bigram_init_std == 0 and not (a.ortho_init and min(a.bigram_dim, a.model_dim) >= 64):
        errors.append("arch.bigram_init_std=0 zeroes the BigramHash table and its projection starts at zero, so "
                      "neither ever gets a gradient; set arch.bigram_init_std=0.01, or arch.ortho_init=true with "
                      "arch.bigram_dim and arch.model_dim >= 64")
    if a.bigram_mult <= 0 or (a.ortho_proj_scale and not a.ortho_init) or (a.smear_pre_norm and not a.smear):
        errors.append(f"arch.bigram_mult={a.bigram_mult} must be positive, arch.ortho_proj_scale needs "
                      f"arch.ortho_init=true and arch.smear_pre_norm needs arch.smear=true")
    errors += _check_depth_options(a)
    return errors


def _check_depth_options(a) -> list[str]:
    errors = []
    r = list(a.recur_layers)
    if r and (r != list(range(r[0], r[0] + len(r))) or not 0 <= r[0] <= r[-1] < a.num_layers):
        errors.append(f"arch.recur_layers={r} must be a contiguous ascending range of blocks in [0, "
                      f"{a.num_layers - 1}]; e.g. arch.recur_layers=[3,4,5]")
    if a.recur_loops < 1 or a.recur_start_step < 0:
        errors.append(f"arch.recur_loops={a.recur_loops} must be >= 1 and arch.recur_start_step="
                      f"{a.recur_start_step} >= 0")
    if a.parallel_residual.value != "none" and not 0 <= a.parallel_start < a.num_layers:
        errors.append(f"arch.parallel_start={a.parallel_start} must be a block index in [0, {a.num_layers - 1}] "
                      f"for arch.parallel_residual={a.parallel_residual.value}")
    if a.ebls_blocks < 0 or (a.ebls_blocks and a.num_layers % a.ebls_blocks):
        errors.append(f"arch.ebls_blocks={a.ebls_blocks} must divide arch.num_layers={a.num_layers} (the virtual "
                      f"layers the shared blocks serve); try one of {_divisors(a.num_layers)}")
    elif a.ebls_blocks and (a.ebls_rank < 1 or a.ebls_penalty < 0):
        errors.append(f"arch.ebls_rank={a.ebls_rank} must be >= 1 and arch.ebls_penalty={a.ebls_penalty} >= 0")
    elif a.ebls_blocks and (r or a.parallel_residual.value != "none"):
        errors.append("EBLS (arch.ebls_blocks > 0) already shares blocks across depth; it does not combine with "
                      "arch.recur_layers or arch.parallel_residual: set arch.recur_layers=[] and "
                      "arch.parallel_residual=none")
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
    if cfg.launcher.nnodes < 1 or (cfg.launcher.nnodes > 1 and cfg.launcher.name != LauncherName.torchrun):
        errors.append(f"launcher.nnodes={cfg.launcher.nnodes} must be >= 1, and > 1 needs launcher=torchrun")
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


def _check_schedule(key: str, schedule: list) -> list[str]:
    steps = [pair[0] for pair in schedule if len(pair) == 2]
    if (len(steps) != len(schedule) or any(s < 0 for s in steps) or any(b <= a for a, b in itertools.pairwise(steps))
            or any(pair[1] <= 0 for pair in schedule)):
        return [f"train.{key}={schedule} must be [[from_step, value], ...] with from_step >= 0 strictly increasing "
                f"and positive values, e.g. train.{key}=[[0,512],[2000,1024]]"]
    return []


def _check_train_recipe(cfg: GolfConfig, world_size: int) -> list[str]:
    """Averaging, warmdown, batch-shape schedules and the optimizer options of the later records."""
    t, o = cfg.train, cfg.optimizer
    errors = []
    if not 0 <= t.ema_decay < 1:
        errors.append(f"train.ema_decay={t.ema_decay} must be in [0, 1) (0 turns EMA off; the records use 0.997)")
    if t.swa_every < 0 or not 0 < t.swa_below <= 1:
        errors.append(f"train.swa_every={t.swa_every} must be >= 0 (0: off) and train.swa_below={t.swa_below} "
                      f"in (0, 1]")
    if t.ema_decay > 0 and t.swa_every > 0:
        errors.append(f"train.ema_decay={t.ema_decay} and train.swa_every={t.swa_every} both pick the weights to "
                      f"export; keep one (train.swa_every=0 or train.ema_decay=0)")
    if not 0 <= t.warmdown_fraction <= 1 or not 0 <= t.lr_floor < 1:
        errors.append(f"train.warmdown_fraction={t.warmdown_fraction} must be in [0, 1] and train.lr_floor="
                      f"{t.lr_floor} in [0, 1)")
    elif t.lr_floor > 0 and t.warmdown_fraction == 0:
        errors.append(f"train.lr_floor={t.lr_floor} only applies to the fraction warmdown; set train.warmdown_fraction "
                      f"(e.g. 0.72) or train.lr_floor=0")
    schedule_errors = (_check_schedule("seq_len_schedule", t.seq_len_schedule)
                       + _check_schedule("batch_schedule", t.batch_schedule))
    errors.extend(schedule_errors)
    if not schedule_errors and t.seq_len > 0 and t.batch_tokens > 0:
        accum = grad_accum_steps(cfg, world_size)
        for start, batch_tokens, seq_len in shape_stages(t):
            per_micro = world_size * accum * seq_len
            if (batch_tokens, seq_len) != (t.batch_tokens, t.seq_len) and batch_tokens % per_micro:
                errors.append(f"from step {start} the schedules give batch_tokens={batch_tokens}, seq_len={seq_len}: "
                              f"batch_tokens must be a multiple of world_size x grad_accum x seq_len = {world_size} x "
                              f"{accum} x {seq_len} = {per_micro}; fix train.batch_schedule / train.seq_len_schedule")
    for key in ("muon_weight_decay", "embed_weight_decay", "scalar_weight_decay"):
        if getattr(o, key) < 0:
            errors.append(f"optimizer.{key}={getattr(o, key)} must be >= 0 (0: off)")
    if o.muon_pe_safety <= 0:
        errors.append(f"optimizer.muon_pe_safety={o.muon_pe_safety} must be positive (1.0: none, as PR #1550)")
    if o.decoder_lr_mult <= 0:
        errors.append(f"optimizer.decoder_lr_mult={o.decoder_lr_mult} must be positive (1: off; PR #462 uses 2)")
    if o.muon_coeffs.value == "polar_express" and not 1 <= o.muon_backend_steps <= len(POLAR_EXPRESS_COEFFS):
        errors.append(f"optimizer.muon_coeffs=polar_express has {len(POLAR_EXPRESS_COEFFS)} coefficient sets, "
                      f"optimizer.muon_backend_steps={o.muon_backend_steps}; set it to 1-{len(POLAR_EXPRESS_COEFFS)} "
                      f"(PR #1550 uses 4)")
    muon_only = {"muon_weight_decay": 0.0, "embed_weight_decay": 0.0, "scalar_weight_decay": 0.0,
                 "decoder_lr_mult": 1.0, "muon_row_norm": False}
    changed = [k for k, off in muon_only.items() if getattr(o, k) != off] + (
        ["muon_coeffs"] if o.muon_coeffs.value != "ns5" else [])
    if o.name.value == "adamw" and changed:
        errors.append(f"optimizer.{', optimizer.'.join(changed)} apply to the Muon split only, not to optimizer=adamw "
                      f"(one AdamW, decay optimizer.weight_decay); use optimizer=muon_adam or muon_adamw")
    return errors


def validate(cfg: GolfConfig) -> None:
    """Raise ConfigError listing every violated rule (not just the first)."""
    world_size = cfg.launcher.nproc * cfg.launcher.nnodes
    errors = (_check_arch(cfg.arch) + _check_batches(cfg, world_size) + _check_rest(cfg) + ttt_eval_errors(cfg)
              + _check_train_recipe(cfg, world_size))
    if errors:
        raise ConfigError("invalid config: " + "; ".join(errors))
