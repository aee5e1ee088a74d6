"""The model config (`arch`): every default reproduces the official baseline."""

from dataclasses import dataclass, field

from golf.config.choice import Choice


class MLPKind(Choice):
    relu2 = "relu2"  # proj(relu(fc x)^2), the baseline
    leaky_relu2 = "leaky_relu2"  # proj(leaky_relu(fc x, arch.mlp_leaky_slope)^2)
    star_relu = "star_relu"  # proj(scale * relu(fc x)^2 + bias), per-unit vectors: PR #462's "SwiGLU"
    swiglu = "swiglu"  # proj(silu(gate x) * fc x), the true gated SwiGLU


class BigramHashKind(Choice):
    mult = "mult"  # (prev * 1009 + cur) mod K (PR #462)
    xor = "xor"  # (36313 cur XOR 27191 prev) mod (K - 1), bucket K - 1 reserved (merged records)


class ParallelResidual(Choice):
    none = "none"
    two_lane = "two_lane"  # PR #1550: attention lane and MLP lane from the first decoder layer >= parallel_start
    gptj = "gptj"  # attention and MLP read the same input in every layer >= parallel_start
    two_lane_mix = "two_lane_mix"  # PR #1855+: two lanes that both sublayers write into with learned weights


@dataclass
class ArchConfig:
    """The model. Every default reproduces the official baseline; layer lists index physical blocks."""

    name: str = "baseline"
    vocab_size: int = 1024
    num_layers: int = 9  # physical blocks; with EBLS the virtual layers (ebls_blocks shared blocks serve them)
    model_dim: int = 512
    num_heads: int = 8
    num_kv_heads: int = 4
    mlp_mult: int = 2
    tie_embeddings: bool = True
    tied_embed_init_std: float = 0.005
    logit_softcap: float = 30.0
    rope_base: float = 10000.0
    qk_gain_init: float = 1.5  # initial per-head query gain after QK-norm
    bos_id: int = 1  # document start (checked against the tokenizer's BOS before training)
    bos_mask: bool = True  # SmearGate and BigramHash never read across a BOS (false: as the seeds, which predate it)
    mlp: MLPKind = MLPKind.relu2
    mlp_hidden: int = 0  # 0: mlp_mult * model_dim
    mlp_leaky_slope: float = 0.5
    rope_dims: int = 0  # rotate only the first rope_dims dims of each head; 0: all of them
    rope_ntk_train_len: int = 0  # > 0: NTK base scaling for sequences longer than this; 0: off
    rope_yarn_train_len: int = 0  # > 0: YaRN scaling (golf.models.yarn) for sequences longer than this; 0: off
    doc_attention: bool = False  # attention stays inside each BOS-delimited document (golf.models.document_mask)
    xsa_layers: list[int] = field(default_factory=list)  # exclusive self attention on these blocks
    attn_gate: bool = False  # per-head sigmoid gate on the attention output
    sparse_attn_gate: bool = False  # SparseAttnGate: per-head gate read from the first gate_window input features
    sparse_attn_gate_scale: float = 1.0  # gate = sigmoid(scale * w . x[:gate_window])
    gate_window: int = 12  # input features SparseAttnGate and the gated SmearGate read
    value_embed_dim: int = 0  # value-embedding table width; 0: off
    value_embed_layers: list[int] = field(default_factory=list)
    value_residual: bool = False  # VRL: blocks >= 1 blend the first layer's values into theirs
    bigram_buckets: int = 0  # BigramHash table rows; 0: off
    bigram_dim: int = 128
    bigram_hash: BigramHashKind = BigramHashKind.mult
    bigram_mult: int = 1009  # the "mult" hash's multiplier of the previous token (PR #484's EBLS: 104729)
    bigram_init_std: float = 0.01  # 0: zero table (needs ortho_init, which gives the projection weights)
    bigram_scale_init: float = 0.0  # > 0: learned output scale starting here; 0: no scale
    smear: bool = False  # SmearGate on the normalized embedding
    gated_smear: bool = False  # content-gated SmearGate on the raw embedding (golf.models.gated_smear)
    asym_softcap: bool = False  # AsymLogit: one learnable cap per logit sign, both starting at logit_softcap
    smear_pre_norm: bool = False  # SmearGate before the embedding's RMSNorm (PR #484's EBLS) instead of after it
    smear_init_logit: float = 0.0  # initial gate logit: the previous position's share is sigmoid(this)
    skip_gates: bool = False  # sigmoid-gated U-Net skips
    virtual_skips: bool = False  # one skip weight per encoder/decoder pair of the looped depth (PR #1855+)
    ln_scale: bool = False  # sublayer inputs times 1/sqrt(physical layer + 1)
    recur_layers: list[int] = field(default_factory=list)  # contiguous blocks to run again (depth recurrence)
    recur_loops: int = 1  # extra passes over recur_layers
    recur_start_step: int = 0  # training step from which recurrence runs (a rebuilt model always runs it)
    recur_start_fraction: float = 0.0  # > 0: from this share of training instead (of the wall-clock cap, else steps)
    parallel_residual: ParallelResidual = ParallelResidual.none
    parallel_start: int = 7  # first physical block of the parallel form
    ortho_init: bool = False  # orthogonal init pass over every non-zero-init linear with both dims >= 64
    ortho_proj_scale: bool = False  # that pass also scales side-table projections by 1/sqrt(2 num_layers) (PR #589)
    ebls_blocks: int = 0  # EBLS: shared blocks serving num_layers virtual layers; 0: off
    ebls_rank: int = 8  # rank of the per-virtual-layer bypasses
    ebls_gamma_init: float = -2.0  # gamma logit at init (sigmoid -> 0.12)
    ebls_penalty: float = 0.01  # lambda of the shrinkage penalty lambda * sum(gamma) added to the training loss
