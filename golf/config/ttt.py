"""The test-time-training config (`ttt`): the protocol and its optimizer."""

from dataclasses import dataclass, field

from golf.config.choice import Choice


class TTTMode(Choice):
    none = "none"
    stream = "stream"  # score-first chunks of the val stream, full weights (PR #461/#549)
    lora = "lora"  # score-first per-document LoRA adapters, documents batched side by side (PR #77, #1530)
    phased_lora = "phased_lora"  # lora + global SGD over the scored documents between phases (PR #1610, #1626)
    prequant = "prequant"  # research only: adapt on all val, then quantize, then score; never compliant


class TTTOptimizer(Choice):
    sgd = "sgd"
    adamw = "adamw"


class LayerLR(Choice):
    constant = "constant"
    discriminative = "discriminative"  # 0.3x -> 1.0x over depth (resouer #6)
    multipliers = "multipliers"  # ttt.lr_multipliers, one per block (e.g. quantization sensitivity)


class SNRScale(Choice):
    none = "none"
    eb = "eb"  # |E[g]| / std(g), as PR #484's text describes
    eb_abs = "eb_abs"  # mean|g| / std(g), as PR #484's code computed


class LoRAReset(Choice):
    document = "document"  # fresh adapters and optimizer state for every document
    stream = "stream"  # adapters carry across documents


class DocQueue(Choice):
    stream = "stream"  # documents in val order
    length = "length"  # batches of similar length, longest batch first (PR #1530 onwards)


@dataclass
class TTTConfig:
    name: str = "none"
    mode: TTTMode = TTTMode.none
    chunk_tokens: int = 32768  # stream: positions scored, then trained on, per chunk
    epochs: int = 3  # optimizer epochs over each chunk after it is scored
    optimizer: TTTOptimizer = TTTOptimizer.sgd
    lr: float = 0.002  # peak; cosine decay across the whole pass
    lr_floor: float = 0.0  # the cosine ends at lr_floor x lr (pre-quant PR #462 / #1550: 0.1)
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_seqs: int = 32  # sequences per optimizer step over all ranks (global; each rank takes a share)
    seq_len: int = 0  # training sequence length inside a chunk; 0: the eval sequence length
    grad_clip_norm: float = 1.0
    freeze_embeddings: bool = False  # keep the token embedding, output head and BigramHash fixed (PR #484)
    freeze_blocks: int = 0  # the first k blocks stay fixed
    freeze_pattern: str = ""  # regex on parameter names to keep fixed
    layer_lr: LayerLR = LayerLR.constant
    lr_multipliers: list[float] = field(default_factory=list)
    snr_scale: SNRScale = SNRScale.none
    snr_min: float = 0.3
    snr_max: float = 3.0
    lora_rank: int = 8
    lora_chunk: int = 256  # lora: tokens per score-then-step chunk inside a document
    lora_targets: str = r"attn\.(c_q|c_v)$"  # regex on module names that get adapters
    lora_reset: LoRAReset = LoRAReset.document
    lora_head: bool = False  # lora: an adapter on the output head's logits as well
    lora_batch_docs: int = 1  # lora: documents adapted side by side, each with its own adapters
    lora_queue: DocQueue = DocQueue.stream  # lora: the order documents are taken in (recorded in the result)
    phases: int = 1  # phased_lora: global steps, each once its share of phase_docs documents of the queue is scored
    phase_docs: int = 2000  # phased_lora: documents of the queue the last global step trains on
    phase_lr: float = 0.001  # phased_lora: SGD LR of the global steps (momentum, chunk_tokens, batch_seqs as stream)
    phase_epochs: int = 1  # phased_lora: epochs of each global step over its documents
    compile: bool = False
    qat: bool = False  # pre-quant TTT forwards see fake-quantized weights (PR #462 left late QAT on; #1550 off)
