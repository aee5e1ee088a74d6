"""Per-layer gradient SNR in every run: the values against an independent numpy computation (shared blocks
once), logged at the training log steps of every architecture, and with the same keys in stream and LoRA TTT."""

import numpy as np
import pytest
import torch
from test_arch_components import noisy, tiny
from test_arch_presets import CPU_OVERRIDES, compose_config
from test_sliding_eval import VOCAB, _ctx, _model

from golf.checkpoint import Checkpointer
from golf.config.ttt import TTTConfig, TTTMode
from golf.data.loader import DistributedTokenLoader
from golf.data.shard_writer import write_shard
from golf.job_trainer import JobTrainer
from golf.models.layer_groups import layer_groups
from golf.models.registry import build_model
from golf.optim.gradient_snr import SERIES, GradientSNR
from golf.optim.param_groups import build_optimizers
from golf.ttt import session
from golf.utils.runtime import Runtime

pytestmark = pytest.mark.usefixtures("single_thread")
RT = Runtime(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"), autocast_dtype=None, compile=False)


def _reference(params) -> tuple[float, float]:
    g = np.concatenate([p.grad.detach().double().numpy().ravel() for p in params])
    std = g.std(ddof=1)  # the sample std, as PR #484's code (torch's default Tensor.std)
    return abs(g.mean()) / std, np.abs(g).mean() / std


def test_values_match_numpy_and_a_shared_block_is_measured_once():
    model = noisy(tiny(num_layers=6, ebls_blocks=2, ebls_rank=4))  # 2 shared blocks x 3 virtual layers
    ids = torch.randint(0, VOCAB, (2, 16), generator=torch.Generator().manual_seed(0))
    model(ids, ids).backward()
    snr = GradientSNR(layer_groups(model), 0.3, 3.0)
    snr.measure()
    logged = snr.metrics("snr")
    layers = {k.split("/")[-1] for k in logged}
    assert {"layer_00", "layer_01"} <= layers and not {"layer_02", "layer_03"} & layers  # 2 blocks, not 6 depths
    assert snr.count["layer_00"] == 1  # one measurement of the shared block, not one per depth it serves
    eb, eb_abs = _reference(model.blocks[1].parameters())
    assert logged["snr/eb/layer_01"] == pytest.approx(eb, rel=1e-5)
    assert logged["snr/eb_abs/layer_01"] == pytest.approx(eb_abs, rel=1e-5)
    assert logged["snr/eb_clipped/layer_01"] == pytest.approx(min(max(eb, 0.3), 3.0), rel=1e-5)
    assert logged["snr/eb_abs_clipped/layer_01"] == pytest.approx(min(max(eb_abs, 0.3), 3.0), rel=1e-5)
    assert logged["snr/eb/virtual_04"] == pytest.approx(_reference(model.virtual_layers[4].parameters())[0], rel=1e-5)


def test_summary_keeps_the_last_and_the_mean_of_each_series():
    model = _model()
    snr = GradientSNR(layer_groups(model), 0.0, 100.0)
    firsts = []
    for shift in (0.0, 1.0):
        for p in model.parameters():
            p.grad = torch.randn_like(p) + shift
        snr.measure()
        firsts.append(_reference(model.blocks[0].parameters())[0])
    summary = snr.summary()
    assert summary["steps"] == 2 and set(summary["final"]) == set(SERIES)
    assert summary["final"]["eb"]["layer_00"] == pytest.approx(firsts[1], rel=1e-5)
    assert summary["mean"]["eb"]["layer_00"] == pytest.approx(sum(firsts) / 2, rel=1e-5)


class _Records:
    def __init__(self):
        self.records = []

    def log(self, step, metrics):
        self.records.append((step, metrics))


@pytest.mark.parametrize("arch", ["baseline_cpu", *CPU_OVERRIDES])
def test_training_logs_every_layers_snr_at_log_steps(tmp_path, arch):
    extra = CPU_OVERRIDES.get(arch, "").split()
    cfg = compose_config(f"arch={arch}", *extra, "train.iterations=3", "train.batch_tokens=256", "train.seq_len=32",
                         "train.grad_accum_steps=1", "train.warmup_steps=0", "train.val_every=0", "train.log_every=2",
                         "budget=unlimited")
    write_shard(tmp_path / "s_train_000000.bin", torch.randint(0, cfg.arch.vocab_size, (5_000,)))
    torch.manual_seed(0)
    model = build_model(cfg.arch)
    sink = _Records()
    optimizers = build_optimizers(model, cfg.optimizer, cfg.arch.tie_embeddings, fused=False)
    pattern = str(tmp_path / "s_train_*.bin")
    trainer = JobTrainer(model, model, optimizers, lambda: DistributedTokenLoader(pattern, 0, 1), cfg, RT, 1,
                         lambda s, ms: None, sink, Checkpointer(tmp_path, "h" * 64, RT))
    outcome = trainer.run()
    groups = {g.key for g in layer_groups(model)}
    assert [step for step, _ in sink.records] == [1, 2, 3]  # steps <= 10 always log
    for _, metrics in sink.records:
        assert {k.split("/", 2)[1] for k in metrics if k.startswith("snr/")} == set(SERIES)
        assert {k.split("/")[-1] for k in metrics if k.startswith("snr/eb/")} <= groups
        assert {k.split("/")[-1] for k in metrics if k.startswith("snr/eb/")} >= {"layer_00", "tok_emb"}
    assert outcome.snr["steps"] == 3 and set(outcome.snr["mean"]) == set(SERIES)


def _ttt_keys(records) -> set[str]:
    return {k.split("/", 2)[2].split("/")[0] for _, m in records for k in m if k.startswith("ttt/snr/")}


def test_stream_and_lora_ttt_log_the_same_snr_keys():
    tokens = torch.randint(2, VOCAB, (4 * 128 + 1,), generator=torch.Generator().manual_seed(3))
    tokens[::100] = 1  # BOS: documents for LoRA
    stream, lora = [], []
    stream_cfg = TTTConfig(name="sgd", mode=TTTMode.stream, chunk_tokens=128, epochs=1, lr=0.01, batch_seqs=4)
    session.test_time_train(_model(), _ctx(tokens), stream_cfg, 32, 0, on_chunk=lambda i, m: stream.append((i, m)),
                            diagnose=False)
    lora_cfg = TTTConfig(name="lora", mode=TTTMode.lora, epochs=1, lr=0.01, lora_rank=2, lora_chunk=32)
    out = session.test_time_train(_model(), _ctx(tokens), lora_cfg, 32, 0, on_chunk=lambda i, m: lora.append((i, m)),
                                  diagnose=False)
    assert _ttt_keys(stream) == _ttt_keys(lora) == set(SERIES)
    assert all("ttt/step" in m for _, m in stream + lora)
    assert {k.split("/")[-1] for _, m in lora for k in m if k.startswith("ttt/snr/eb/")} == {"layer_00", "layer_01"}
    assert out["snr"]["steps"] > 0 and set(out["snr"]["final"]["eb"]) == {"layer_00", "layer_01"}
