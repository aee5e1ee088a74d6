"""Stream TTT's chunk rules refuse a config with a suggestion that itself passes them."""

import pytest
from hydra import compose, initialize

from golf.config.compose import register_schemas
from golf.ttt.checks import ttt_eval_errors


def _errors(*overrides: str) -> list[str]:
    register_schemas()
    with initialize(version_base="1.3", config_path="../golf/conf"):
        cfg = compose("config", overrides=["+experiment=cpu_demo", "ttt=sgd", *overrides])
    return ttt_eval_errors(cfg)


@pytest.mark.parametrize("overrides, key, fix", [
    (["eval.stride=48", "ttt.chunk_tokens=960"], "eval.stride=48", "eval.stride=32"),
    (["eval.stride=64", "ttt.chunk_tokens=1000"], "ttt.chunk_tokens=1000", "ttt.chunk_tokens=960"),
    (["eval.stride=64", "ttt.chunk_tokens=100"], "ttt.chunk_tokens=100", "ttt.chunk_tokens=256"),
])
def test_chunk_rules_name_the_key_and_a_fix_that_passes(overrides, key, fix):
    [error] = _errors(*overrides)
    assert key in error and f"try {fix}" in error
    fixed = [o for o in overrides if o.split("=")[0] != fix.split("=")[0]] + [fix]
    assert _errors(*fixed) == []
