"""quant=frontier: the embedding Hessian, SDClip k per category, int8 attention gates, AWQ-lite, LQER and the
per-group layout, each against its formula, and the whole export's round trip."""

import logging

import numpy as np
import pytest
import torch
from test_arch_components import VOCAB, noisy, tiny
from test_arch_presets import compose_config

from golf.artifact import container, packed, pergroup
from golf.config.arch import ArchConfig
from golf.config.quant import QuantConfig
from golf.data.demo import demo_dir_name
from golf.errors import ArtifactError, ConfigError
from golf.models.registry import build_model, load_model
from golf.models.roles import CONTROL, MLP_MATRIX, parameter_roles
from golf.models.sparse_attn_gate import ATTN_GATE
from golf.quant import lowbit
from golf.quant.awq_lite import group_saliency, select_groups
from golf.quant.gptq import collect_hessians, gptq_quantizer
from golf.quant.intn import ColumnGroup, clip_for, qmax, quantize_state, round_matrix, storage_bits
from golf.quant.lqer import add_corrections, factorize, pack_factors
from golf.quant.quantize import quantize

pytestmark = pytest.mark.usefixtures("single_thread")


def test_embedding_hessian_is_that_of_the_tied_heads_input():
    model = noisy(tiny(), 0.05).eval()
    tokens = torch.randint(0, VOCAB, (3, 16))
    seen = []
    handle = model.final_norm.register_forward_hook(lambda m, i, out: seen.append(out.reshape(-1, out.shape[-1])))
    hessians = collect_hessians(model, tokens, 2, None, embed_hessian=True)
    handle.remove()
    x = torch.cat(seen)
    torch.testing.assert_close(hessians["tok_emb.weight"], x.T @ x / len(x))
    assert "tok_emb.weight" not in collect_hessians(model, tokens, 2, None)  # off by default


def test_sdclip_k_per_category_and_int8_gates_at_any_size():
    q = QuantConfig(clip="sdclip", sdclip_k=12.85, sdclip_k_mlp=11.5, bits_gate=8)
    assert [clip_for(q, c).sdclip_k for c in ("mlp", "attn", "embed")] == [11.5, 12.85, 12.85]
    w = torch.randn(6, 40, generator=torch.Generator().manual_seed(0))
    _, s = round_matrix("w", w, 6, clip_for(q, "mlp"), "mlp")
    torch.testing.assert_close(s, (11.5 * w.std(dim=1) / qmax(6)).half().float())
    gate = torch.randn(8, 12)
    assert storage_bits(ATTN_GATE, gate, q, {"gate": 8}) == 8  # 96 weights, far below keep_float_max_numel
    assert storage_bits(MLP_MATRIX, gate, q, {"mlp": 6}) == 16
    codes, scale = round_matrix("g", gate, 8, q, "gate")
    torch.testing.assert_close(scale, (gate.abs().amax(dim=1) / 127).half().float())  # row maximum, no clip
    assert codes.abs().max() == 127
    assert storage_bits(CONTROL, torch.randn(512), QuantConfig(control_bits=16), {}) == 16


def test_awq_lite_saliency_and_selection():
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(4, 16, generator=gen)
    x = torch.randn(100, 16, generator=gen) * torch.linspace(0.1, 2.0, 16)
    h = x.T @ x / len(x)
    sal = group_saliency(w, h, 4)
    manual = [float((x[:, g * 4:(g + 1) * 4].pow(2).mean(0).sqrt() * w[:, g * 4:(g + 1) * 4].abs().mean(0)).sum())
              for g in range(4)]
    torch.testing.assert_close(sal, torch.tensor(manual))
    loud = w.clone()
    loud[:, 4:8] *= 10
    chosen = select_groups({"a": w, "b": loud}, {"a": h, "b": h}, 1, 4, 8)
    assert chosen == {"b": ColumnGroup(4, 4, 8)}
    assert set(select_groups({"a": w, "b": loud}, {"a": h, "b": h}, 2, 4, 8)) == {"a", "b"}  # one group per matrix


def test_gptq_promoted_group_uses_finer_int8_steps():
    gen = torch.Generator().manual_seed(2)
    w, x = torch.randn(16, 32, generator=gen), torch.randn(256, 32, generator=gen)
    q = QuantConfig(clip="sdclip", sdclip_k=4.0)
    h = {"w": x.T @ x / len(x)}
    plain_q, plain_s = gptq_quantizer(h, 0.01, 8, True)("w", w, 6, q)
    group = ColumnGroup(8, 8, 8)
    codes, s = gptq_quantizer(h, 0.01, 8, True, {"w": group})("w", w, 6, q)
    torch.testing.assert_close(s, plain_s)  # the matrix keeps its row scales
    assert codes[:, 8:16].abs().max() > 31 >= codes[:, :8].abs().max()  # int8 codes only in the group
    meta, tensors, _ = quantize_state({"w": w}, QuantConfig(clip="sdclip", sdclip_k=4.0, keep_float_max_numel=0),
                                      {"w": MLP_MATRIX}, gptq_quantizer(h, 0.01, 8, True, {"w": group}),
                                      {"w": group})
    assert meta["quantized"]["w"]["promoted"] == {"start": 8, "size": 8, "bits": 8}
    deq = packed.dequantize(meta, tensors)["w"]
    plain = plain_q * plain_s[:, None]
    assert (deq - w)[:, 8:16].abs().mean() < 0.5 * (plain - w)[:, 8:16].abs().mean()


def test_lqer_asymmetric_factors_and_top_k_selection():
    gen = torch.Generator().manual_seed(3)
    e = torch.randn(64, 4, generator=gen) @ torch.randn(4, 32, generator=gen) * 0.01
    f = factorize(e, 4, 32)
    assert f[".lqer_a"].shape == (64, 4) and f[".lqer_b"].shape == (4, 32) and f[".lqer_b_scale"].shape == (4,)
    assert f[".lqer_a"].min() >= -2 and f[".lqer_a"].max() <= 1 and f[".lqer_b"].min() >= -8 and f[".lqer_b"].max() <= 7
    a = f[".lqer_a"].float() * f[".lqer_a_scale"].float()
    b = (f[".lqer_b"].float().reshape(-1, 32) * f[".lqer_b_scale"].float()[:, None]).reshape(4, 32)
    assert (e - a @ b).norm() < 0.8 * e.norm()  # int2 A with one scale is coarse: about a quarter of it goes
    assert f[".lqer_a_scale"].item() == pytest.approx(float((e.svd()[0][:, :4] * e.svd()[1][:4]).abs().max()) / 1.5,
                                                      rel=1e-3)
    packed_ab = pack_factors(torch.tensor([[1.5], [-0.75], [-1.5], [0.2]]), torch.linspace(-1, 1, 32)[None], 16)
    assert packed_ab[".lqer_a_scale"].item() == 1.0 and packed_ab[".lqer_a"].flatten().tolist() == [1, -1, -2, 0]
    assert packed_ab[".lqer_b_scale"].tolist() == pytest.approx([1 / 7.5, 1 / 7.5], rel=1e-3)  # max |group| / 7.5
    assert packed_ab[".lqer_b"][0, :3].tolist() == [-8, -7, -7] and packed_ab[".lqer_b"][0, -1] == 7  # 7.5 -> 8 -> 7
    state = {n: torch.randn(64, 32, generator=gen) * k for n, k in (("small", 0.1), ("big", 1.0), ("mid", 0.5))}
    meta, tensors, _ = quantize_state(state, QuantConfig(scheme="intn", keep_float_max_numel=0),
                                      dict.fromkeys(state, MLP_MATRIX))
    before = packed.dequantize(meta, tensors)
    chosen = add_corrections(meta, tensors, state, list(state), 2, 4, 32)
    assert chosen == ["big", "mid"] and "lqer" not in meta["quantized"]["small"]
    after = packed.dequantize(meta, tensors)
    for name in chosen:
        assert (after[name] - state[name]).norm() < (before[name] - state[name]).norm()


def test_similarity_order_is_a_greedy_nearest_neighbour_walk():
    rows = np.array([[0, 0], [9, 9], [1, 1], [8, 7], [2, 1]], dtype=np.int8)
    assert pergroup.similarity_order(rows).tolist() == [0, 2, 4, 3, 1]


@pytest.mark.parametrize("codec", ["brotli", "lrzip"])
def test_pergroup_layout_round_trips_bit_for_bit(codec):
    if codec == "lrzip" and not pergroup.lrzip_available():
        pytest.skip("the lrzip binary is not installed")
    gen = torch.Generator().manual_seed(4)
    tensors = {"m.q": torch.randint(-31, 32, (40, 24), generator=gen, dtype=torch.int8),
               "m.scale": torch.rand(40, generator=gen).half(),
               "e.q": torch.randint(-63, 64, (64, 24), generator=gen, dtype=torch.int8),
               "e.scale": torch.rand(64, generator=gen).half(), "f": torch.randn(5), "v": torch.randn(3, 3).half()}
    meta = {"format": "x", "order": ["m", "e", "f", "v"], "orig_dtypes": {},
            "quantized": {"m": {"bits": 6, "dtype": "float32"}, "e": {"bits": 7, "dtype": "float32"}}}
    blob = pergroup.encode(meta, tensors, {"m": "mlp", "e": "embed"}, codec, 11)
    back_meta, back = pergroup.decode(blob)
    assert back_meta == meta and back.keys() == tensors.keys()
    assert all(torch.equal(back[k], tensors[k]) for k in tensors)


def test_lrzip_missing_falls_back_or_fails_clearly(monkeypatch, caplog):
    monkeypatch.setattr(pergroup, "lrzip_available", lambda: False)
    with caplog.at_level(logging.INFO):
        assert lowbit.hot_codec(QuantConfig(hot_compressor="auto")) == "brotli"
    assert "apt-get install lrzip" in caplog.text
    with pytest.raises(ArtifactError, match="lrzip binary is not on PATH"):
        lowbit.hot_codec(QuantConfig(hot_compressor="lrzip"))
    header = '{"buckets":[{"name":"mlp","codec":"lrzip","bytes":0,"tensors":[]}],"remainder_bytes":0}'.encode()
    with pytest.raises(ArtifactError, match="install it"):
        pergroup.decode(pergroup.MAGIC + len(header).to_bytes(4, "little") + header)


def test_frontier_export_round_trip_is_exact(tmp_path, demo_cache):
    small = ["arch.num_layers=5", "arch.recur_layers=[1,2]", "arch.xsa_layers=[0,1,2,3,4]", "arch.parallel_start=3"]
    cfg = compose_config("arch=frontier_cpu", *small, "quant=frontier", "quant.calib_seqs=8", "quant.calib_seq_len=64",
                         "quant.awq_group_size=8", "quant.hot_compressor=brotli", "data=demo",
                         f"data.root={demo_cache / demo_dir_name()}")
    torch.manual_seed(0)
    model = noisy(build_model(cfg.arch), 0.05).eval()
    out = quantize(model, cfg, 16_000_000)
    assert len(out.info["lqer"]) == 3 and len(out.info["awq_promoted"]) == 1
    assert out.info["compressor"] == "pergroup-brotli-brotli11" and out.info["params_by_bits"]["8"] == 5 * 2 * 12
    state = container.unpack(out.blob).weights
    assert state.keys() == out.state.keys() and all(torch.equal(state[k], out.state[k]) for k in state)
    path = tmp_path / "model.golf"
    container.write(path, out.blob)
    reloaded = load_model(path, torch.device("cpu"), arch_type=ArchConfig).eval()
    model.load_state_dict(out.state)
    ids = torch.randint(2, cfg.arch.vocab_size, (2, 32), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.equal(reloaded.logits(ids), model.logits(ids))
    roles = parameter_roles(model)
    assert all(state[n].dtype == torch.float32 for n in state if roles[n].control)  # fp16-stored, restored


@pytest.mark.parametrize("override, words", [
    ("quant.awq_groups=1", "need calibration Hessians"), ("quant.lqer_top_k=-1", "quant.lqer_top_k=-1"),
    ("quant.control_bits=8", "quant.control_bits=8"), ("quant.clip=search", "one clip per matrix"),
])
def test_frontier_quant_config_errors(override, words):
    base = ["quant=frontier"] + (["quant.scheme=intn"] if "awq" in override else [])
    with pytest.raises(ConfigError, match=words):
        compose_config(*base, override)
