"""Which golf modules a run's train_gpt.py embeds: the boundary of counted code.

The script embeds the static import closure of its entry point (golf.record.entry: pipeline, trainer,
model, optimizer, data, evaluation, quantization, artifact) plus the optional modules the run's config
uses. Optional modules are the ones golf imports inside a function, only when a config asks for them
(an architecture component, a quantizer, a TTT protocol); `OPTIONAL` says which config selects each one.
Only module-level imports enter the static closure (imports under `if TYPE_CHECKING:` serve annotations and
never run), so an optional module is embedded exactly when its predicate holds. What golf's jobs add around a
run (golf.job_pipeline, golf.job_trainer: checkpoints, preemption, the data access log, results) is outside
the closure by construction. `RECORD_MODULES` is the allow-list: every module a record may ever carry. Tests check
that the largest closure stays inside it, that every lazy golf import inside it is in `OPTIONAL`, and
that none of it imports Hydra, OmegaConf, W&B or plotting.
"""

import ast
import importlib.util
from pathlib import Path

from golf.models.gpt import uses_layer_stack

ENTRY = "golf.record.entry"

# module -> the config that makes the run import it
OPTIONAL = {
    "golf.models.bigram_hash": lambda c: c.arch.bigram_buckets > 0,
    "golf.models.smear_gate": lambda c: c.arch.smear,
    "golf.models.value_embedding": lambda c: c.arch.value_embed_dim > 0,
    "golf.models.ebls": lambda c: c.arch.ebls_blocks > 0,
    "golf.models.orthogonal_init": lambda c: c.arch.ortho_init,
    "golf.models.sparse_attn_gate": lambda c: c.arch.sparse_attn_gate,
    "golf.models.xsa": lambda c: bool(c.arch.xsa_layers),
    "golf.models.attn_gate": lambda c: c.arch.attn_gate,
    "golf.models.gated_smear": lambda c: c.arch.gated_smear,
    "golf.models.asym_softcap": lambda c: c.arch.asym_softcap,
    "golf.models.token_mixing": lambda c: c.arch.bigram_buckets > 0 or c.arch.smear or c.arch.gated_smear,
    "golf.models.layer_stack": lambda c: uses_layer_stack(c.arch),  # with stack_block, stack_attention
    "golf.models.document_mask": lambda c: c.arch.doc_attention,
    "golf.models.lane_mix": lambda c: c.arch.parallel_residual == "two_lane_mix",
    "golf.models.recurrence": lambda c: bool(c.arch.recur_layers) or c.arch.virtual_skips,
    "golf.models.rope_scaling": lambda c: c.arch.rope_ntk_train_len > 0 or c.arch.rope_yarn_train_len > 0,
    "golf.models.yarn": lambda c: c.arch.rope_yarn_train_len > 0,
    "golf.models.star_relu": lambda c: c.arch.mlp == "star_relu",
    "golf.models.swiglu": lambda c: c.arch.mlp == "swiglu",
    "golf.data.coprime_loader": lambda c: c.train.loader == "coprime",
    "golf.data.byte_sidecar": lambda c: bool(c.data.val_bytes_pattern),
    "golf.quant.qat": lambda c: c.quant.qat_threshold > 0,
    "golf.quant.lowbit": lambda c: c.quant.scheme in ("intn", "gptq"),
    "golf.quant.calibration": lambda c: c.quant.scheme == "gptq",
    "golf.quant.awq_lite": lambda c: c.quant.scheme == "gptq" and c.quant.awq_groups > 0,
    "golf.quant.lqer": lambda c: c.quant.scheme in ("intn", "gptq") and c.quant.lqer_top_k > 0,
    "golf.eval.sliding": lambda c: c.eval.name == "sliding" or c.ttt.mode != "none",
    "golf.eval.ledger": lambda c: c.ttt.mode != "none",  # a protocol's clock; plain evals skip legality in a record
    "golf.eval.scoring": lambda c: c.ttt.mode != "none",
    "golf.optim.averaging": lambda c: c.train.ema_decay > 0 or c.train.swa_every > 0,
    "golf.optim.muon_options": lambda c: (c.optimizer.name != "adamw" and (
        c.optimizer.muon_row_norm or c.optimizer.muon_weight_decay > 0 or c.optimizer.muon_coeffs != "ns5")),
    "golf.optim.polar_express": lambda c: c.optimizer.muon_coeffs == "polar_express",
    "golf.optim.decoder_lr": lambda c: c.optimizer.name != "adamw" and c.optimizer.decoder_lr_mult != 1.0,
    "golf.artifact.packed": lambda c: c.quant.scheme in ("intn", "gptq"),
    "golf.artifact.pergroup": lambda c: c.quant.scheme in ("intn", "gptq") and c.quant.compressor == "pergroup",
    "golf.ttt.session": lambda c: c.ttt.mode != "none",
    "golf.ttt.stream": lambda c: c.ttt.mode == "stream",
    "golf.ttt.lora": lambda c: c.ttt.mode in ("lora", "phased_lora"),
    "golf.ttt.documents": lambda c: c.ttt.mode in ("lora", "phased_lora"),
    "golf.ttt.phased": lambda c: c.ttt.mode == "phased_lora",
    "golf.eval.ngram_tilt": lambda c: c.eval.ngram_tilt.enabled,
    "golf.ttt.prequant": lambda c: c.ttt.mode == "prequant",
}

# Every module a record may embed (the closure of ENTRY with every optional module).
RECORD_MODULES = frozenset({
    "golf",
    "golf.artifact", "golf.artifact.compressors", "golf.artifact.container", "golf.artifact.corrections",
    "golf.artifact.int8", "golf.artifact.packed", "golf.artifact.pergroup",
    "golf.config", "golf.config.derived",
    "golf.data", "golf.data.byte_sidecar", "golf.data.coprime_loader", "golf.data.loader", "golf.data.shard_writer",
    "golf.data.shards", "golf.data.tokenizer", "golf.data.train_loader",
    "golf.errors",
    "golf.eval", "golf.eval.bpb", "golf.eval.context", "golf.eval.full", "golf.eval.ledger", "golf.eval.ngram_tilt",
    "golf.eval.scoring", "golf.eval.sliding", "golf.eval.val_stream",
    "golf.guards",
    "golf.logging", "golf.logging.console", "golf.logging.progress",
    "golf.models", "golf.models.asym_softcap", "golf.models.attention", "golf.models.attn_gate",
    "golf.models.bigram_hash", "golf.models.block", "golf.models.document_mask", "golf.models.ebls",
    "golf.models.fake_quant", "golf.models.gated_smear", "golf.models.gpt", "golf.models.lane_mix",
    "golf.models.layer_groups", "golf.models.layer_stack", "golf.models.layers", "golf.models.mlp",
    "golf.models.orthogonal_init", "golf.models.recurrence", "golf.models.registry", "golf.models.roles",
    "golf.models.rope_scaling", "golf.models.smear_gate", "golf.models.sparse_attn_gate", "golf.models.stack_attention",
    "golf.models.stack_block", "golf.models.star_relu", "golf.models.swiglu",
    "golf.models.token_mixing", "golf.models.value_embedding", "golf.models.xsa", "golf.models.yarn",
    "golf.optim", "golf.optim.averaging", "golf.optim.decoder_lr", "golf.optim.gradient_snr", "golf.optim.muon",
    "golf.optim.muon_options", "golf.optim.param_groups", "golf.optim.polar_express", "golf.optim.schedule",
    "golf.pipeline",
    "golf.quant", "golf.quant.awq_lite", "golf.quant.calibration", "golf.quant.fit", "golf.quant.gptq",
    "golf.quant.intn", "golf.quant.lowbit", "golf.quant.lqer", "golf.quant.qat", "golf.quant.quantize",
    "golf.record", "golf.record.entry",
    "golf.trainer",
    "golf.ttt", "golf.ttt.documents", "golf.ttt.lora", "golf.ttt.lora_adapters", "golf.ttt.phased",
    "golf.ttt.prequant", "golf.ttt.session", "golf.ttt.stream", "golf.ttt.training",
    "golf.utils", "golf.utils.compile", "golf.utils.runtime",
})


def module_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, AttributeError):  # `golf.x.y` where golf.x is a module, not a package
        return None
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


def _golf_names(node: ast.AST, module: str, is_package: bool) -> set[str]:
    if isinstance(node, ast.Import):
        found = {alias.name for alias in node.names}
    else:
        base = node.module or ""
        if node.level:
            parent = module if is_package else module.rsplit(".", 1)[0]
            parent = parent.rsplit(".", node.level - 1)[0] if node.level > 1 else parent
            base = f"{parent}.{base}" if base else parent
        found = {base} | {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in found if name == "golf" or name.startswith("golf.")}


def type_checking_only(stmt: ast.stmt) -> bool:
    """An `if TYPE_CHECKING:` block: imports for annotations, never run (the script drops it)."""
    return isinstance(stmt, ast.If) and isinstance(stmt.test, ast.Name) and stmt.test.id == "TYPE_CHECKING" \
        and not stmt.orelse


def imports(name: str) -> tuple[set[str], set[str]]:
    """(module-level, function-level) golf imports of module `name` (names that are not modules included);
    imports under `if TYPE_CHECKING:` are neither."""
    path = module_file(name)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    tree.body = [stmt for stmt in tree.body if not type_checking_only(stmt)]
    top = {n for stmt in tree.body if isinstance(stmt, (ast.Import, ast.ImportFrom))
           for n in _golf_names(stmt, name, path.name == "__init__.py")}
    every = {n for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
             for n in _golf_names(node, name, path.name == "__init__.py")}
    return top, every - top


def static_closure(roots) -> dict[str, Path]:
    """Module name -> source file for every golf module the roots import at module level (parents included)."""
    closure: dict[str, Path] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in closure:
            continue
        path = module_file(name)
        if path is None:  # `from golf.x import y` where y is a function, not a module
            continue
        closure[name] = path
        parts = name.split(".")
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        pending.extend(imports(name)[0])
    return dict(sorted(closure.items()))


def record_modules(cfg) -> dict[str, Path]:
    """The modules the train_gpt.py of a run with config `cfg` embeds."""
    return static_closure([ENTRY, *(name for name, used in OPTIONAL.items() if used(cfg))])
