"""Config rules of the arch section (called by golf.config.validate before any work starts)."""

from golf.models.registry import ARCHITECTURES


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(1, n + 1) if n % d == 0)


def arch_errors(a) -> list[str]:
    """Shapes and option combinations of the model (golf.models); every message names the key and a fix."""
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
    if a.mlp == "leaky_relu2" and not 0 < a.mlp_leaky_slope < 1:
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
    errors += _check_depth_options(a) + _check_gate_and_rope_options(a)
    return errors


def _check_gate_and_rope_options(a) -> list[str]:
    """The options of the PR #1855-#2135 stack: gate windows, YaRN, the recurrence fraction."""
    errors = []
    if (a.sparse_attn_gate or a.gated_smear) and not 1 <= a.gate_window <= a.model_dim:
        errors.append(f"arch.gate_window={a.gate_window} must be in [1, arch.model_dim={a.model_dim}] for "
                      f"arch.sparse_attn_gate / arch.gated_smear; the records use 12")
    if a.sparse_attn_gate and a.attn_gate:
        errors.append("arch.attn_gate and arch.sparse_attn_gate both gate the attention output; keep one "
                      "(arch.attn_gate=false for the records' SparseAttnGate)")
    if a.rope_yarn_train_len < 0 or (a.rope_yarn_train_len and a.rope_ntk_train_len):
        errors.append(f"arch.rope_yarn_train_len={a.rope_yarn_train_len} must be >= 0 (0: off) and cannot combine "
                      f"with arch.rope_ntk_train_len={a.rope_ntk_train_len}; pick one rotary scaling")
    if not 0 <= a.recur_start_fraction < 1:
        errors.append(f"arch.recur_start_fraction={a.recur_start_fraction} must be in [0, 1) (0: use "
                      f"arch.recur_start_step; the records use 0.35)")
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
    if a.parallel_residual != "none" and not 0 <= a.parallel_start < a.num_layers:
        errors.append(f"arch.parallel_start={a.parallel_start} must be a block index in [0, {a.num_layers - 1}] "
                      f"for arch.parallel_residual={a.parallel_residual}")
    if a.ebls_blocks < 0 or (a.ebls_blocks and a.num_layers % a.ebls_blocks):
        errors.append(f"arch.ebls_blocks={a.ebls_blocks} must divide arch.num_layers={a.num_layers} (the virtual "
                      f"layers the shared blocks serve); try one of {_divisors(a.num_layers)}")
    elif a.ebls_blocks and (a.ebls_rank < 1 or a.ebls_penalty < 0):
        errors.append(f"arch.ebls_rank={a.ebls_rank} must be >= 1 and arch.ebls_penalty={a.ebls_penalty} >= 0")
    elif a.ebls_blocks and (r or a.parallel_residual != "none"):
        errors.append("EBLS (arch.ebls_blocks > 0) already shares blocks across depth; it does not combine with "
                      "arch.recur_layers or arch.parallel_residual: set arch.recur_layers=[] and "
                      "arch.parallel_residual=none")
    return errors
