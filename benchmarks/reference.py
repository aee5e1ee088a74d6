"""The official script (openai/parameter-golf `train_gpt.py`, MIT) as a peer, used by path and never copied.

`load_reference(path)` imports the file as a module at run time; its classes then build the official side of
benchmarks.peer: `GPT`, `Muon`, `DistributedTokenLoader`, `build_sentencepiece_luts`, `load_validation_tokens`
and `eval_val`. What its `main()` does around them (bf16 storage, the optimizer split, the environment
variables of a whole-script run) is restated here from its documented behaviour. The file is looked up at
--ref, then $GOLF_REFERENCE, then `.reference/train_gpt.py` in the repo (gitignored: where a copy goes for a
GPU run), then `shared/reference/train_gpt.py` in the folder beside the checkout.
"""

import dataclasses
import importlib.util
import os
from pathlib import Path
from types import ModuleType

import torch

from golf.config.arch import ArchConfig
from golf.config.optimizer import OptimizerConfig
from golf.config.train import TrainConfig
from golf.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
REFERENCE_ENV = "GOLF_REFERENCE"
DEFAULT_LOCATIONS = (REPO / ".reference" / "train_gpt.py", REPO.parent / "shared" / "reference" / "train_gpt.py")

# What the official model and loop can express; any other field away from its default is refused.
OFFICIAL_ARCH_FIELDS = {"name", "vocab_size", "num_layers", "model_dim", "num_heads", "num_kv_heads", "mlp_mult",
                        "tie_embeddings", "tied_embed_init_std", "logit_softcap", "rope_base", "qk_gain_init",
                        "bos_id"}  # bos_id only matters to SmearGate and BigramHash, which stay off
OFFICIAL_OPTIMIZER_FIELDS = {"name", "tied_embed_lr", "embed_lr", "head_lr", "matrix_lr", "scalar_lr", "beta1",
                             "beta2", "adam_eps", "weight_decay", "muon_momentum", "muon_momentum_warmup_start",
                             "muon_momentum_warmup_steps", "muon_backend_steps", "grad_clip_norm"}
GOLF_ONLY_TRAIN_FIELDS = ("warmdown_fraction", "seq_len_schedule", "batch_schedule", "loader", "ema_decay",
                          "swa_every")


def find_reference(explicit: str | Path | None = None) -> Path | None:
    """The reference script's path (see the module doc for the order), or None when none exists."""
    if explicit:
        return Path(explicit)
    if os.environ.get(REFERENCE_ENV):
        return Path(os.environ[REFERENCE_ENV])
    return next((path for path in DEFAULT_LOCATIONS if path.is_file()), None)


def load_reference(path: Path | None) -> ModuleType:
    if path is None or not Path(path).is_file():
        raise ConfigError(f"official train_gpt.py not found at {path or ' or '.join(map(str, DEFAULT_LOCATIONS))}; "
                          f"pass --ref PATH (or set {REFERENCE_ENV}) to openai/parameter-golf's train_gpt.py")
    spec = importlib.util.spec_from_file_location("official_train_gpt", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _changed(section, defaults, allowed: set[str]) -> list[str]:
    return [f.name for f in dataclasses.fields(section)
            if f.name not in allowed and getattr(section, f.name) != getattr(defaults, f.name)]


def check_official_config(cfg) -> None:
    """Refuse, before any work, a config the official script cannot train."""
    changed = ([f"arch.{n}" for n in _changed(cfg.arch, ArchConfig(), OFFICIAL_ARCH_FIELDS)]
               + [f"optimizer.{n}" for n in _changed(cfg.optimizer, OptimizerConfig(), OFFICIAL_OPTIMIZER_FIELDS)]
               + [f"train.{n}" for n in GOLF_ONLY_TRAIN_FIELDS if getattr(cfg.train, n) != getattr(TrainConfig(), n)])
    if cfg.optimizer.name != "muon_adam":
        changed.append("optimizer.name")
    if cfg.quant.qat_threshold > 0:
        changed.append("quant.qat_threshold")
    if changed:
        raise ConfigError(f"the official script cannot train this config: {', '.join(changed)} differ from the "
                          f"baseline; compare a baseline-family config (arch=baseline, tiny or baseline_cpu, "
                          f"optimizer=muon_adam) without these overrides")


def official_model(ref: ModuleType, arch: ArchConfig, bf16: bool) -> torch.nn.Module:
    """The official GPT; with `bf16`, the storage dtypes of its main(): all bf16, then CastedLinear weights and
    low-dimensional / control tensors back to fp32."""
    model = ref.GPT(vocab_size=arch.vocab_size, num_layers=arch.num_layers, model_dim=arch.model_dim,
                    num_heads=arch.num_heads, num_kv_heads=arch.num_kv_heads, mlp_mult=arch.mlp_mult,
                    tie_embeddings=arch.tie_embeddings, tied_embed_init_std=arch.tied_embed_init_std,
                    logit_softcap=arch.logit_softcap, rope_base=arch.rope_base, qk_gain_init=arch.qk_gain_init)
    if bf16:
        model.bfloat16()
        for module in model.modules():
            if isinstance(module, ref.CastedLinear):
                module.float()
        ref.restore_low_dim_params_to_fp32(model)
    return model


def official_optimizers(ref: ModuleType, model: torch.nn.Module, opt: OptimizerConfig, tie_embeddings: bool,
                        fused: bool) -> list[torch.optim.Optimizer]:
    """The official split and stepping order: Adam for the token embedding, [Adam for the untied head], Muon for
    2-D block matrices, Adam for block vectors, control tensors and the skip weights; every group has base_lr."""
    def is_control(name: str) -> bool:
        return any(pattern in name for pattern in ref.CONTROL_TENSOR_NAME_PATTERNS)

    def adam(params, lr):
        return torch.optim.Adam([{"params": params, "lr": lr, "base_lr": lr}], betas=(opt.beta1, opt.beta2),
                                eps=opt.adam_eps, fused=fused)

    named = list(model.blocks.named_parameters())
    matrices = [p for name, p in named if p.ndim == 2 and not is_control(name)]
    scalars = [p for name, p in named if p.ndim < 2 or is_control(name)]
    if model.skip_weights.numel() > 0:
        scalars.append(model.skip_weights)
    muon = ref.Muon(matrices, lr=opt.matrix_lr, momentum=opt.muon_momentum, backend_steps=opt.muon_backend_steps)
    for group in muon.param_groups:
        group["base_lr"] = opt.matrix_lr
    optimizers = [adam([model.tok_emb.weight], opt.tied_embed_lr if tie_embeddings else opt.embed_lr), muon,
                  adam(scalars, opt.scalar_lr)]
    if model.lm_head is not None:
        optimizers.insert(1, adam([model.lm_head.weight], opt.head_lr))
    return optimizers


def official_data_dir(cfg, into: Path) -> Path:
    """A directory the official script reads (`fineweb_{train,val}_*.bin`): links to the config's shards, which
    are in the official shard format."""
    from golf.data.shards import find_shards

    into.mkdir(parents=True, exist_ok=True)
    for split, pattern in (("train", cfg.data.train_pattern), ("val", cfg.data.val_pattern)):
        for i, shard in enumerate(find_shards(pattern)):
            link = into / f"fineweb_{split}_{i:06d}.bin"
            if not link.exists():
                link.symlink_to(Path(shard).resolve())
    return into


def official_env(cfg, data_dir: Path, run_id: str, log_every: int) -> dict[str, str]:
    """The environment variables that make the official script train `cfg` (no wall-clock cap, validation only
    after the last step)."""
    a, o, t = cfg.arch, cfg.optimizer, cfg.train
    values = {
        "DATA_PATH": data_dir, "TOKENIZER_PATH": cfg.data.tokenizer_path, "RUN_ID": run_id, "SEED": cfg.seed,
        "ITERATIONS": t.iterations, "WARMUP_STEPS": t.warmup_steps, "WARMDOWN_ITERS": t.warmdown_iters,
        "TRAIN_BATCH_TOKENS": t.batch_tokens, "TRAIN_SEQ_LEN": t.seq_len, "MAX_WALLCLOCK_SECONDS": 0,
        "VAL_LOSS_EVERY": 0, "VAL_BATCH_SIZE": cfg.eval.batch_tokens, "TRAIN_LOG_EVERY": log_every,
        "VOCAB_SIZE": a.vocab_size, "NUM_LAYERS": a.num_layers, "MODEL_DIM": a.model_dim,
        "NUM_HEADS": a.num_heads, "NUM_KV_HEADS": a.num_kv_heads, "MLP_MULT": a.mlp_mult,
        "TIE_EMBEDDINGS": int(a.tie_embeddings), "TIED_EMBED_INIT_STD": a.tied_embed_init_std,
        "LOGIT_SOFTCAP": a.logit_softcap, "ROPE_BASE": a.rope_base, "QK_GAIN_INIT": a.qk_gain_init,
        "EMBED_LR": o.embed_lr, "HEAD_LR": o.head_lr, "TIED_EMBED_LR": o.tied_embed_lr, "MATRIX_LR": o.matrix_lr,
        "SCALAR_LR": o.scalar_lr, "MUON_MOMENTUM": o.muon_momentum, "MUON_BACKEND_STEPS": o.muon_backend_steps,
        "MUON_MOMENTUM_WARMUP_START": o.muon_momentum_warmup_start,
        "MUON_MOMENTUM_WARMUP_STEPS": o.muon_momentum_warmup_steps, "BETA1": o.beta1, "BETA2": o.beta2,
        "ADAM_EPS": o.adam_eps, "GRAD_CLIP_NORM": o.grad_clip_norm,
    }
    return {key: str(value) for key, value in values.items()}
