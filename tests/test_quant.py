"""Unit tests of the quantization schemes, GPTQ, calibration, the container and the budget fitter."""

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch

from golf.artifact import container, packed
from golf.config.arch import ArchConfig
from golf.config.quant import CalibSource, ClipMode, Compressor, QuantConfig, QuantScheme
from golf.config.schema import GolfConfig
from golf.config.validate import validate
from golf.data import access
from golf.errors import ArtifactError, ConfigError
from golf.models.registry import build_model, load_model
from golf.models.roles import parameter_roles
from golf.quant.calibration import self_generated_tokens, train_tokens
from golf.quant.fit import fit_to_budget
from golf.quant.gptq import collect_hessians, gptq_quantizer
from golf.quant.intn import qmax, quantize_state, round_matrix
from golf.quant.quantize import quantize

pytestmark = pytest.mark.usefixtures("single_thread")
ARCH = ArchConfig(name="baseline", vocab_size=1024, num_layers=2, model_dim=64, num_heads=2, num_kv_heads=1)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(ARCH)
    with torch.no_grad():  # trained-like weights: the zero-initialised projections get values too
        for p in model.parameters():
            if p.ndim == 2:
                p.add_(torch.randn_like(p) * 0.05)
    return model


def _cfg(**quant) -> GolfConfig:
    cfg = GolfConfig(arch=ARCH)
    cfg.quant = QuantConfig(**{"keep_float_max_numel": 1024, "calib_seqs": 4, "calib_seq_len": 32, **quant})
    return cfg


def _write_shard(path: Path, tokens: np.ndarray) -> None:
    header = np.zeros(256, dtype="<i4")
    header[:3] = (20240520, 1, tokens.size)
    path.write_bytes(header.tobytes() + tokens.astype("<u2").tobytes())


def test_packed_container_is_exact_for_every_dtype():
    tensors = {"a.q": torch.randint(-31, 32, (5, 7), dtype=torch.int8), "a.scale": torch.rand(5).half(),
               "b": torch.randn(3).bfloat16(), "c": torch.tensor(3.0), "d": torch.randn(2, 2),
               "e": torch.arange(4), "f": torch.tensor([True, False])}
    meta, back = packed.deserialize(packed.serialize({"k": [1, 2]}, tensors))
    assert meta == {"k": [1, 2]} and set(back) == set(tensors)
    for name, t in tensors.items():
        assert back[name].dtype == t.dtype and back[name].shape == t.shape and torch.equal(back[name], t), name


@pytest.mark.parametrize("clip", list(ClipMode))
def test_codes_stay_in_the_symmetric_range_and_bits_buy_precision(clip):
    w = torch.randn(16, 48) * 0.05
    errors = []
    for bits in (4, 5, 6, 7, 8):
        q, s = round_matrix("blocks.0.mlp.fc.weight", w, bits, QuantConfig(clip=clip))
        assert int(q.abs().max()) <= qmax(bits) and torch.equal(s, s.half().float())
        if clip != ClipMode.sdclip:  # k x std clips wide on purpose (fewer levels in use compress better)
            assert len(q.unique()) > qmax(bits)  # the grid is used, not collapsed onto a few levels
        errors.append(float(((q * s[:, None] - w) ** 2).mean()))
    # each extra bit halves the step, so the squared error drops about 4x
    assert all(b < a / 2.5 for a, b in pairwise(errors)), errors


def test_categories_bits_and_float_tensors():
    model = _model()
    meta, tensors, by_bits = quantize_state(model.state_dict(), _cfg(bits_attn=5, bits_mlp=4, bits_embed=8,
                                                                    bits_other=6, scheme=QuantScheme.intn).quant,
                                            parameter_roles(model))
    quantized = meta["quantized"]
    assert quantized["tok_emb.weight"]["bits"] == 8 and quantized["blocks.0.mlp.fc.weight"]["bits"] == 4
    assert quantized["blocks.0.attn.c_q.weight"]["bits"] == 5
    assert int(tensors["blocks.0.mlp.fc.weight.q"].abs().max()) <= 7
    assert tensors["blocks.0.resid_mix"].dtype == torch.float32 and "blocks.0.resid_mix" not in quantized
    assert sum(by_bits.values()) == sum(p.numel() for p in _model().parameters())


@pytest.mark.parametrize("quant", [
    {"scheme": QuantScheme.int8, "keep_float_max_numel": 65536},
    {"scheme": QuantScheme.none},
    {"scheme": QuantScheme.intn, "clip": ClipMode.percentile, "compressor": Compressor.zstd, "level": 22},
    {"scheme": QuantScheme.intn, "clip": ClipMode.sdclip, "compressor": Compressor.lzma, "level": 9},
    {"scheme": QuantScheme.intn, "clip": ClipMode.search, "bits_mlp": 5, "prune_fraction": 0.05},
    {"scheme": QuantScheme.gptq, "clip": ClipMode.search, "calib_source": CalibSource.self_generated},
    {"scheme": QuantScheme.gptq, "clip": ClipMode.sdclip, "sdclip_k_embed": 20.0, "scale_floor": True,
     "calib_source": CalibSource.self_generated, "compressor": Compressor.brotli, "level": 11},  # PR #1550's
])
def test_every_scheme_reloads_bit_exactly(tmp_path, quant):
    model = _model()
    exported = quantize(model, _cfg(**quant), 16_000_000)
    path = tmp_path / "model.golf"
    container.write(path, exported.blob)
    state = container.unpack(path.read_bytes()).weights
    assert set(state) == set(exported.state)
    for name, t in state.items():
        assert t.dtype == exported.state[name].dtype and torch.equal(t, exported.state[name]), name
    reloaded = load_model(path, torch.device("cpu"), arch_type=ArchConfig)
    assert all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), state.values()))


def test_gptq_beats_rounding_at_the_same_bits():
    torch.manual_seed(1)
    x = torch.randn(2048, 96) @ torch.randn(96, 96)  # correlated inputs, as in a trained network
    w = torch.randn(48, 96) * 0.05
    quant = QuantConfig(clip=ClipMode.percentile, clip_percentile=100.0)

    def out_err(q, s):
        return float(((x @ (q * s[:, None] - w).T) ** 2).mean())

    for bits in (4, 6):
        plain = out_err(*round_matrix("w", w, bits, quant))
        gptq = out_err(*gptq_quantizer({"w": x.T @ x / len(x)}, 0.01, 32, True)("w", w, bits, quant))
        assert gptq < 0.8 * plain, (bits, gptq, plain)


def test_hessians_cover_every_linear_and_fall_back_without_one():
    model = _model()
    hessians = collect_hessians(model, torch.randint(0, 1024, (4, 16)), 2, None)
    linears = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert set(hessians) == linears
    h = hessians["blocks.0.attn.c_q.weight"]
    assert torch.allclose(h, h.T) and bool((h.diagonal() >= 0).all())
    w = model.tok_emb.weight.detach()  # tied embedding: no Hessian, plain rounding with the same clip
    quant = QuantConfig()
    q, _ = gptq_quantizer(hessians, 0.01, 128, True)("tok_emb.weight", w, 8, quant)
    assert torch.equal(q, round_matrix("tok_emb.weight", w, 8, quant)[0])


def test_calibration_reads_the_train_stream_and_logs_the_files_it_read(tmp_path):
    tokens = np.arange(5000) % 1024
    _write_shard(tmp_path / "fineweb_train_000000.bin", tokens)
    _write_shard(tmp_path / "fineweb_val_000000.bin", tokens[::-1])
    access.LOG.clear()
    with access.reading_as("calibration"):  # the reader name a job's pipeline gives calibration
        x, source = train_tokens(str(tmp_path / "fineweb_train_*.bin"), 4, 32)
    assert x.shape == (4, 32) and torch.equal(x[0], torch.arange(32)) and source.startswith("train:")
    assert access.LOG.files("calibration") == [str((tmp_path / "fineweb_train_000000.bin").resolve())]


def test_self_generated_calibration_is_seeded():
    model = _model()
    a, source = self_generated_tokens(model, 1024, 3, 12, 0.8, seed=7)
    b, _ = self_generated_tokens(model, 1024, 3, 12, 0.8, seed=7)
    assert a.shape == (3, 12) and torch.equal(a, b) and source.startswith("self_generated:")


def test_fitter_lands_under_a_decimal_target_and_reports_impossible_ones():
    cfg = _cfg(scheme=QuantScheme.intn, bits_embed=6, compressor=Compressor.zlib, level=9)
    model = _model()
    meta, tensors, _ = quantize_state(model.state_dict(), cfg.quant, parameter_roles(model))

    def encode(t):
        return packed.pack(meta, t, ARCH, "zlib", 9)

    full = len(encode(tensors))
    target = full - 400
    fitted, blob, info = fit_to_budget(meta, tensors, encode, target)
    assert len(blob) <= target and info["pruned_codes"] > 0 and blob == encode(fitted)
    assert len(encode(fit_to_budget(meta, tensors, encode, full)[0])) == full  # already fits: untouched
    with pytest.raises(ArtifactError, match=r"over after zeroing all"):
        fit_to_budget(meta, tensors, encode, full // 4)


@pytest.mark.parametrize("key,value,words", [
    ("bits_mlp", 3, "quant.bits_mlp=3"), ("level", 23, "quant.level=23"), ("prune_fraction", 1.0, "prune_fraction"),
])
def test_quant_config_errors_name_the_key(key, value, words):
    cfg = _cfg(scheme=QuantScheme.intn, compressor=Compressor.zstd, level=22)
    setattr(cfg.quant, key, value)
    with pytest.raises(ConfigError, match=words.replace(".", r"\.")):
        validate(cfg)


def _rows(w: torch.Tensor) -> torch.Tensor:
    return w.float().reshape(w.shape[0], -1)


def test_sdclip_takes_each_categorys_k_and_zero_means_the_percentile_clip():
    """PR #1550 clips its int6 matrices at 12.85 sample-std and its int8 embedding at 20 (scale = k std / qmax);
    its other int8 tensors at the 99.99984th percentile. References written from those formulas."""
    model = _model()
    state = model.state_dict()
    cfg = _cfg(scheme=QuantScheme.intn, clip=ClipMode.sdclip, sdclip_k=12.85, sdclip_k_embed=20.0).quant
    _, tensors, _ = quantize_state(state, cfg, parameter_roles(model))
    emb, c_q = _rows(state["tok_emb.weight"]), _rows(state["blocks.0.attn.c_q.weight"])
    assert torch.equal(tensors["tok_emb.weight.scale"], (20.0 * emb.std(dim=1) / 127).half())
    assert torch.equal(tensors["blocks.0.attn.c_q.weight.scale"], (12.85 * c_q.std(dim=1) / 31).half())
    cfg.sdclip_k_embed = 0.0
    _, tensors, _ = quantize_state(state, cfg, parameter_roles(model))
    clip = torch.quantile(emb.abs(), 0.9999984, dim=1)
    assert torch.equal(tensors["tok_emb.weight.scale"], (clip / 127).half())
    cfg.sdclip_k_embed = None  # the embedding follows sdclip_k
    _, tensors, _ = quantize_state(state, cfg, parameter_roles(model))
    assert torch.equal(tensors["tok_emb.weight.scale"], (12.85 * emb.std(dim=1) / 127).half())


@pytest.mark.parametrize("clip", [ClipMode.percentile, ClipMode.sdclip, ClipMode.search])
def test_scale_floor_binds_on_rows_whose_clip_is_below_one(clip):
    """The seeds' exports keep every scale >= 1/qmax: a small-magnitude row gets the 1/31 step, not its own."""
    w = torch.randn(4, 256, generator=torch.Generator().manual_seed(0))
    w[0] *= 0.002  # its own scale would be far below 1/31
    w[1] *= 10.0
    floored = round_matrix("w", w, 6, QuantConfig(clip=clip, scale_floor=True))[1]
    free = round_matrix("w", w, 6, QuantConfig(clip=clip))[1]
    floor = torch.tensor(1 / 31).half().float()
    assert floored[0] == floor and free[0] < floor / 10
    assert floored[1] == free[1] > floor  # rows clipped above 1 keep their own scale


def test_pr462_export_is_the_published_int6():
    """B9 against PR #462's quantize_float_tensor_int6 written out: per-row clip at the 99.99984th percentile,
    scale max(c/31, 1/31), codes clamp(round(clip(w)/s), -32, 31); tok_emb fp16; the BigramHash table int6."""
    from test_arch_presets import compose_config

    # at CPU width every tensor is below the published 65,536-element float threshold: scale it with the model
    cfg = compose_config("+experiment=pr462", "data.root=/nonexistent", "arch=swiglu_unet_cpu",
                         "quant.keep_float_max_numel=2048")
    torch.manual_seed(0)
    model = build_model(cfg.arch)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2:
                p.add_(torch.randn_like(p) * (0.05 if "blocks.0." in name else 0.5))  # block 0: rows below 1
    state = model.state_dict()
    meta, tensors, _ = quantize_state(state, cfg.quant, parameter_roles(model, quant=cfg.quant))
    assert tensors["tok_emb.weight"].dtype == torch.float16 and "tok_emb.weight" not in meta["quantized"]
    assert meta["quantized"]["bigram.table.weight"]["bits"] == 6
    assert "bigram.proj.weight" not in meta["quantized"]  # 64 x 32 elements: kept float
    matrices = [n for n in meta["quantized"]]
    assert len(matrices) == 1 + 11 * 6  # the table, and q, k, v, out, up, down of every block
    for name in matrices:
        w = _rows(state[name])
        c = torch.quantile(w.abs(), 0.9999984, dim=1)
        s = (c / 31).clamp_min(1 / 31)
        q = torch.clamp(torch.round(torch.maximum(torch.minimum(w, c[:, None]), -c[:, None]) / s[:, None]), -32, 31)
        assert int(q.min()) >= -31  # clipping at c with s >= c/31 never reaches -32: the ranges agree
        assert torch.equal(tensors[name + ".scale"], s.half()), name
        codes = tensors[name + ".q"].float().reshape(q.shape)
        # golf rounds with the stored fp16 scale (exact round trip), PR #462 with its fp32 value: a code may
        # differ by one where w/s sits on a rounding boundary
        assert (codes - q).abs().max() <= 1 and (codes != q).float().mean() < 0.01, name
