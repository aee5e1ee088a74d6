"""The published recipes as arch presets: each composes through Hydra, builds at reduced width (the CPU
overrides documented in its yaml), trains, and survives the artifact round trip with equal logits."""


import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from golf.artifact import container, packed
from golf.config.arch import ArchConfig
from golf.config.compose import register_schemas
from golf.config.quant import Compressor, QuantConfig, QuantScheme
from golf.config.schema import from_dict
from golf.config.validate import validate
from golf.models.registry import build_model
from golf.models.roles import parameter_roles
from golf.models.star_relu import StarReluMLP
from golf.models.swiglu import SwiGLUMLP
from golf.quant.intn import dequantized, quantize_state
from golf.quant.quantize import pack_official

pytestmark = pytest.mark.usefixtures("single_thread")
register_schemas()

CONF = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "golf" / "conf")
# The reduced-width overrides each preset's yaml documents for CPU runs.
CPU_OVERRIDES = {
    "swiglu_unet": "arch.model_dim=64 arch.num_heads=2 arch.num_kv_heads=2 arch.mlp_hidden=224 "
                   "arch.bigram_buckets=512 arch.bigram_dim=32",
    "ebls": "arch.model_dim=64 arch.num_heads=2 arch.num_kv_heads=1 arch.bigram_buckets=512 arch.bigram_dim=32",
    "xsa_bigram": "arch.model_dim=64 arch.num_heads=2 arch.num_kv_heads=1 arch.bigram_buckets=512 "
                  "arch.bigram_dim=64 arch.value_embed_dim=32",
    "recur_parallel": "arch.model_dim=64 arch.num_heads=2 arch.num_kv_heads=1 arch.value_embed_dim=16 "
                      "arch.recur_start_step=0",
    "frontier": "arch.model_dim=64 arch.num_heads=2 arch.num_kv_heads=1",
}
PRESETS = list(CPU_OVERRIDES)


def compose_config(*overrides: str):
    """The typed, validated config exactly as `python -m golf.train <overrides>` would build it."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=[*overrides, "run_name=test", "paths.data_root=/tmp"])
    typed = OmegaConf.to_object(cfg)
    validate(typed)
    return typed


def preset_model(name: str, *extra: str, seed: int = 0):
    arch = compose_config(f"arch={name}", *CPU_OVERRIDES[name].split(), *extra).arch
    torch.manual_seed(seed)
    return build_model(arch), arch


def _learnable_batch(vocab: int, gen: torch.Generator, batch: int = 4, seq: int = 32) -> torch.Tensor:
    """Random starts, then a fixed rule next = 3 * prev + 1 (mod V): learnable from the previous token."""
    tokens = [torch.randint(0, vocab, (batch, 1), generator=gen)]
    for _ in range(seq):
        tokens.append((tokens[-1] * 3 + 1) % vocab)
    return torch.cat(tokens, dim=1)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_composes_builds_and_learns(name):
    model, arch = preset_model(name)
    assert arch.name == name and len(model.blocks) == (arch.ebls_blocks or arch.num_layers)
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for step in range(30):
        model.on_train_step(step, 1.0)
        ids = _learnable_batch(arch.vocab_size, gen)
        loss = model(ids[:, :-1], ids[:, 1:])
        opt.zero_grad()
        loss.backward()
        trained = [p for p in model.parameters() if p.requires_grad]  # AsymLogit's caps train only at test time
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in trained)
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(torch.log(torch.tensor(float(arch.vocab_size))).item(), abs=0.3)
    assert sum(losses[-5:]) / 5 < losses[0] - 1.5, losses


@pytest.mark.parametrize("name", PRESETS)
def test_preset_artifact_round_trip_gives_equal_logits(name):
    model, arch = preset_model(name)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    model.eval()
    ids = torch.randint(0, arch.vocab_size, (2, 16), generator=torch.Generator().manual_seed(1))
    blob = pack_official(model, arch, QuantConfig(scheme=QuantScheme.none, compressor=Compressor.zlib))
    contents = container.unpack(blob)
    fields, state = contents.arch, contents.weights
    rebuilt = build_model(from_dict(ArchConfig, fields))
    rebuilt.load_state_dict(state, strict=True)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval().logits(ids), model.logits(ids))


def test_quantized_artifact_rebuilds_a_preset_from_its_json_header():
    """intn artifacts keep the arch fields in a JSON header: lists and Enum values must come back."""
    model, arch = preset_model("recur_parallel")
    quant = QuantConfig(scheme=QuantScheme.intn, keep_float_max_numel=1024)
    meta, tensors, _ = quantize_state(model.state_dict(), quant, parameter_roles(model))
    contents = container.unpack(packed.pack(meta, tensors, arch, "zlib", 9))
    fields, state = contents.arch, contents.weights
    assert fields["recur_layers"] == [3, 4, 5] and fields["parallel_residual"] == "two_lane"
    rebuilt = build_model(from_dict(ArchConfig, fields))
    rebuilt.load_state_dict(state, strict=True)
    model.load_state_dict(dequantized(meta, tensors), strict=True)
    ids = torch.randint(0, arch.vocab_size, (1, 16), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(rebuilt.eval().logits(ids), model.eval().logits(ids))
    assert rebuilt.layer_order() == [0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7, 8, 9, 10]


def test_int8_artifact_rebuilds_the_ebls_preset():
    model, arch = preset_model("ebls")
    blob = pack_official(model, arch, QuantConfig(keep_float_max_numel=1024))
    contents = container.unpack(blob)
    fields, state = contents.arch, contents.weights
    rebuilt = build_model(from_dict(ArchConfig, fields))
    rebuilt.load_state_dict(state, strict=True)
    assert fields["ebls_blocks"] == 3 and len(rebuilt.virtual_layers) == 9 and len(rebuilt.blocks) == 3


def test_swiglu_unet_switches_to_true_swiglu_with_one_key():
    star, _ = preset_model("swiglu_unet")
    swiglu, _ = preset_model("swiglu_unet", "arch.mlp=swiglu")
    assert all(isinstance(b.mlp, StarReluMLP) for b in star.blocks)
    assert all(isinstance(b.mlp, SwiGLUMLP) for b in swiglu.blocks)


def test_a_bad_preset_override_is_a_config_error():
    from golf.errors import ConfigError

    with pytest.raises(ConfigError, match=r"arch.recur_layers=\[3, 5\] must be a contiguous"):
        compose_config("arch=recur_parallel", "arch.recur_layers=[3,5]")
