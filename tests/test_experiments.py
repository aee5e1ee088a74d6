"""Every named recipe composes, validates and passes (or, for PR #462's oversized model, fails) the
pre-training size check, without touching data or building real weights."""

import pytest

from benchmarks.common import load_config
from golf.errors import ArtifactError
from golf.quant.estimate import check_fits
from golf.record.script import train_script

FITS = ["baseline", "pr484_ebttt", "resouer_dttt", "pr1550", "cpu_demo"]


def _config(name):
    extra = ["data.root=/nonexistent"] if name != "cpu_demo" else []
    return load_config([f"+experiment={name}", *extra])


def _check_fits(cfg):
    """The pre-training size check with the code bytes the run would count: its own train_gpt.py."""
    script, _ = train_script(cfg)
    return check_fits(cfg, len(script))


@pytest.mark.parametrize("name", FITS)
def test_recipe_composes_and_its_estimate_is_within_the_budget_tolerance(name):
    est = _check_fits(_config(name))
    assert est.params > 0


@pytest.mark.parametrize("name", ["pr462", "pr462_published"])
def test_pr462_model_is_refused_before_training(name):
    cfg = _config(name)
    assert cfg.arch.name == "swiglu_unet" and cfg.optimizer.decoder_lr_mult == 2.0 and cfg.train.ema_decay == 0.9985
    with pytest.raises(ArtifactError, match=r"exceeds the 16,000,000 B limit by 4,\d{3},\d{3} B"):
        _check_fits(cfg)


def test_pr1550_uses_its_optimizer_and_schedule():
    cfg = _config("pr1550")
    o, t = cfg.optimizer, cfg.train
    assert cfg.arch.name == "recur_parallel" and cfg.arch.vocab_size == 8192
    assert (o.muon_coeffs.value, o.muon_backend_steps, o.muon_row_norm) == ("polar_express", 4, True)
    assert (t.warmdown_fraction, t.ema_decay, t.seq_len) == (0.72, 0.9965, 2048)
