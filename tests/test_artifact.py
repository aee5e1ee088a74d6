"""The official int8 layout (golf.artifact.int8) and the artifact file (golf.artifact.container): exact round
trips, the official scales, and a clear error for every kind of damaged file."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from golf.artifact import container
from golf.artifact.int8 import dequantize_state_dict, quantize_state_dict
from golf.config.arch import ArchConfig
from golf.config.quant import Compressor, QuantConfig, QuantScheme
from golf.errors import ArtifactError
from golf.models.registry import build_model, load_model
from golf.models.roles import control_names
from golf.quant.quantize import pack_official

CLIP_PERCENTILE = 99.99984
KEEP_FLOAT = 65536
CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("single_thread")


def _state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    big = torch.randn(300, 400, generator=g)
    big[0] *= 1e-3  # a row whose clip/127 is below the 1/127 floor
    big[1, 7] = 50.0  # an outlier far outside the rest of its row
    big[2] = 0.0  # an all-zero row
    return {
        "big2d": big,
        "big2d_bf16": torch.randn(260, 300, generator=g).to(torch.bfloat16),
        "big1d": torch.randn(70_000, generator=g) * 3,
        "small": torch.randn(10, 10, generator=g),
        "blocks.0.resid_mix": torch.randn(2, 64, generator=g),
        "step": torch.arange(5, dtype=torch.int64),
    }


def _reference_row_scale(row: torch.Tensor) -> float:
    # numpy in float64, not torch, so that this is a separate computation of the same definition.
    clip = np.quantile(np.abs(row.double().numpy()), CLIP_PERCENTILE / 100)
    return max(clip / 127, 1 / 127)


def test_int8_layout_and_scales():
    state = _state()
    obj = quantize_state_dict(state, CLIP_PERCENTILE, KEEP_FLOAT, {"blocks.0.resid_mix"})
    assert set(obj["quantized"]) == {"big2d", "big2d_bf16", "big1d"}
    assert set(obj["passthrough"]) == {"small", "blocks.0.resid_mix", "step"}

    for name in ("big2d", "big2d_bf16"):
        q, scale = obj["quantized"][name], obj["scales"][name]
        assert q.dtype == torch.int8 and q.shape == state[name].shape
        assert q.min() >= -127 and q.max() <= 127  # symmetric: -128 is never used
        assert scale.dtype == torch.float16 and scale.shape == (state[name].shape[0],)
        expected = torch.tensor([_reference_row_scale(row) for row in state[name]])
        # fp16 keeps 11 significant bits.
        torch.testing.assert_close(scale.double(), expected.double(), rtol=2**-11, atol=0)
    assert obj["scales"]["big2d"][0] == torch.tensor(1 / 127, dtype=torch.float16)
    assert obj["scales"]["big2d"][2] == torch.tensor(1 / 127, dtype=torch.float16)
    assert (obj["quantized"]["big2d"][2] == 0).all()

    q1, s1 = obj["quantized"]["big1d"], obj["scales"]["big1d"]
    assert q1.dtype == torch.int8 and q1.min() >= -127 and q1.max() <= 127
    assert s1.dtype == torch.float32 and s1.ndim == 0
    clip = np.quantile(np.abs(state["big1d"].double().numpy()), CLIP_PERCENTILE / 100)
    # torch.quantile interpolates in fp32, where 0.9999984 is off by ~4e-8; over 70,000 entries that
    # moves the interpolation point by ~0.003 of the gap between the two largest values.
    assert float(s1) == pytest.approx(clip / 127, rel=1e-3)

    # Small float tensors stay float: fp16 in general, fp32 for control tensors; ints untouched.
    assert obj["passthrough"]["small"].dtype == torch.float16
    assert obj["passthrough_orig_dtypes"]["small"] == "float32"
    assert obj["passthrough"]["blocks.0.resid_mix"].dtype == torch.float32
    assert torch.equal(obj["passthrough"]["step"], state["step"])


def test_int8_round_trip_error_and_dtypes():
    state = _state()
    obj = quantize_state_dict(state, CLIP_PERCENTILE, KEEP_FLOAT, {"blocks.0.resid_mix"})
    out = dequantize_state_dict(obj)
    assert set(out) == set(state)
    for name, t in state.items():
        assert out[name].dtype == t.dtype and out[name].shape == t.shape, name

    assert torch.equal(out["small"], state["small"].half().float())
    assert torch.equal(out["blocks.0.resid_mix"], state["blocks.0.resid_mix"])
    assert torch.equal(out["step"], state["step"])

    for name in ("big2d", "big2d_bf16"):
        w = state[name].double()
        s = obj["scales"][name].double()[:, None]
        clip = torch.tensor([_reference_row_scale(row) * 127 for row in state[name]], dtype=torch.float64)[:, None]
        err = (out[name].double() - w).abs()
        # Rounding to the grid costs at most s/2; q was rounded with the fp32 scale but is multiplied
        # by the fp16 one, which adds up to 127 * |s16 - s32| <= 127 * s * 2^-11; bf16 output adds
        # its own half-ulp.
        bound = s / 2 + 127 * s * 2**-11 + 1e-6
        if out[name].dtype == torch.bfloat16:
            bound = bound + out[name].double().abs() * 2**-8
        inside = w.abs() <= clip
        assert inside.float().mean() > 0.99
        assert (err <= bound)[inside].all(), name
        # Outside the clip range the value saturates at the clip.
        assert (out[name].double().abs() <= 127 * s * (1 + 2**-10)).all()
    assert out["big2d"][1, 7] < 50.0  # the outlier was clipped

    s1 = float(obj["scales"]["big1d"])
    err1 = (out["big1d"].double() - state["big1d"].double()).abs()
    inside1 = state["big1d"].abs() <= s1 * 127
    assert (err1[inside1] <= s1 / 2 + 1e-6).all()


def test_dequantize_rejects_other_formats():
    with pytest.raises(ValueError, match="int8_per_row_v1"):
        dequantize_state_dict({"format": "something_else"})


ARCH = ArchConfig(num_layers=2, model_dim=64, num_heads=4, num_kv_heads=2, vocab_size=1024)


def _trained_like_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(ARCH)
    # Noise on every weight, so zero-initialized projections matter and logits depend on them.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def _quant(scheme: str, compressor: str) -> QuantConfig:
    # keep_float_max_numel is lowered so that the tiny model's block matrices are quantized too.
    return QuantConfig(scheme=QuantScheme(scheme), compressor=Compressor(compressor), keep_float_max_numel=1024)


@pytest.mark.parametrize("compressor", ["zlib", "zstd", "lzma"])
@pytest.mark.parametrize("scheme", ["int8", "none"])
def test_artifact_round_trip_is_bit_exact(tmp_path, scheme, compressor):
    model = _trained_like_model()
    state = model.state_dict()
    quant = _quant(scheme, compressor)
    blob = pack_official(model, ARCH, quant)
    path = tmp_path / "sub" / "model.golf"
    container.write(path, blob)
    assert path.read_bytes() == blob
    assert [p.name for p in path.parent.iterdir()] == ["model.golf"]  # no temp file left behind

    if scheme == "int8":
        quantized = quantize_state_dict(state, quant.clip_percentile, quant.keep_float_max_numel,
                                        control_names(model))
        assert "blocks.0.attn.c_q.weight" in quantized["quantized"]  # really int8, not all passthrough
        expected = dequantize_state_dict(quantized)
    else:
        expected = state
    reloaded = load_model(path, CPU, arch_type=ArchConfig)
    got = reloaded.state_dict()
    assert set(got) == set(expected)
    for name in expected:
        assert got[name].dtype == expected[name].dtype and torch.equal(got[name], expected[name]), name

    reference = build_model(ARCH)
    reference.load_state_dict(expected, strict=True)
    tokens = torch.randint(0, ARCH.vocab_size, (2, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = reference.eval().logits(tokens)
        have = reloaded.eval().logits(tokens)
    assert torch.equal(have, want)
    assert want.std() > 0.01  # non-trivial predictions


def test_int8_artifact_is_smaller_than_raw():
    model = _trained_like_model()
    int8_size = len(pack_official(model, ARCH, _quant("int8", "zlib")))
    raw_size = len(pack_official(model, ARCH, _quant("none", "zlib")))
    assert int8_size < raw_size


@pytest.fixture
def good_artifact(tmp_path) -> tuple[Path, bytes]:
    blob = pack_official(_trained_like_model(), ARCH, _quant("int8", "zlib"))
    return tmp_path / "model.golf", blob


def _header_len(blob: bytes) -> int:
    return 4 + 2 + blob[5] + 32  # magic, version, name length, name, sha256


def _flip_payload_byte(blob: bytes) -> bytes:
    flipped = bytearray(blob)
    flipped[_header_len(blob) + 50] ^= 0x01  # one bit of the compressed payload
    return bytes(flipped)


@pytest.mark.parametrize(
    "corrupt, words",
    [
        (lambda b: b[: len(b) - 100], ["sha256 mismatch", "truncated"]),
        (lambda b: b[:20], ["truncated header"]),
        (lambda b: b[:3], ["bad magic"]),
        (_flip_payload_byte, ["sha256 mismatch", "altered"]),
        (lambda b: b"GOLD" + b[4:], ["bad magic", "not a golf artifact"]),
        (lambda b: b[:4] + bytes([2]) + b[5:], ["version 2", "reads version 1"]),
    ],
    ids=["truncated", "truncated_header", "tiny", "flipped_payload_byte", "bad_magic", "wrong_version"],
)
def test_corrupt_artifacts_raise_artifact_error(good_artifact, corrupt, words):
    path, blob = good_artifact
    bad = corrupt(blob)
    assert bad != blob
    path.write_bytes(bad)
    with pytest.raises(ArtifactError) as info:
        load_model(path, CPU, arch_type=ArchConfig)
    message = str(info.value)
    assert str(path) in message  # the message names the file
    for word in words:
        assert word in message


def test_payload_sha256_is_the_header_digest(good_artifact):
    _, blob = good_artifact
    assert container.payload_sha256(blob) == hashlib.sha256(blob[_header_len(blob):]).hexdigest()
