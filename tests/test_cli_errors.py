"""Bad input through the real CLI: one clear line, non-zero exit, no traceback, and a failed
results.json whenever the job dir already existed."""

import shutil

import pytest
from conftest import FAST_RUN, job_dirs, read_results, run_golf

from golf.data.shard_writer import write_shard
from golf.data.shards import load_shard


def _assert_clean_failure(proc, *needles):
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "Traceback" not in output, output
    for needle in needles:
        assert needle in output, output


def test_mistyped_override_names_the_key(tmp_path, demo_cache):
    proc = run_golf([*FAST_RUN, "arch.num_layer=3"], tmp_path, demo_cache)
    _assert_clean_failure(proc, "arch.num_layer")
    assert not job_dirs(tmp_path)  # Hydra refuses before any job dir exists


def test_unknown_group_option_lists_choices(tmp_path, demo_cache):
    proc = run_golf([*FAST_RUN, "arch=nonexistent"], tmp_path, demo_cache)
    _assert_clean_failure(proc, "arch/nonexistent", "baseline")


def test_wrong_type_is_rejected(tmp_path, demo_cache):
    proc = run_golf([*FAST_RUN, "train.iterations=many"], tmp_path, demo_cache)
    _assert_clean_failure(proc, "train.iterations")


def test_kv_heads_must_divide_heads(tmp_path, demo_cache):
    proc = run_golf([*FAST_RUN, "arch.num_heads=4", "arch.num_kv_heads=3"], tmp_path, demo_cache)
    _assert_clean_failure(proc, "arch.num_kv_heads=3 must divide arch.num_heads=4", "try one of 1, 2, 4")
    [job] = job_dirs(tmp_path)
    results = read_results(job)
    assert results["status"] == "failed"
    assert results["error"]["type"] == "ConfigError" and results["error"]["where"] == "validate"


def test_online_wandb_without_credentials_fails_before_training(tmp_path, demo_cache):
    no_netrc = {"WANDB_API_KEY": "", "NETRC": str(tmp_path / "absent.netrc"), "WANDB_MODE": "online"}
    proc = run_golf([*FAST_RUN, "logger=wandb", "logger.mode=online"], tmp_path, demo_cache, env=no_netrc)
    _assert_clean_failure(proc, "(logger.mode=online, golf.dashboard publish) needs credentials for api.wandb.ai",
                          "wandb login")
    [job] = job_dirs(tmp_path)
    results = read_results(job)
    assert results["status"] == "failed" and results["error"]["where"] == "validate"
    assert not (job / "metrics.jsonl").exists() and not (job / "wandb").exists()  # nothing trained


def test_missing_shards_say_how_to_get_data(tmp_path, demo_cache):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_golf([*FAST_RUN, "data=shards", f"data.root={empty}", "data.vocab_size=1024"], tmp_path, demo_cache)
    _assert_clean_failure(proc, "golf.data.fineweb")
    [job] = job_dirs(tmp_path)
    assert read_results(job)["error"]["where"] == "data"


def test_bos_id_must_be_the_tokenizers_bos(tmp_path, demo_cache):
    """C7: SmearGate / BigramHash mask document starts at arch.bos_id; a wrong id would mask an ordinary token."""
    proc = run_golf([*FAST_RUN, "arch.bos_id=5"], tmp_path, demo_cache)
    _assert_clean_failure(proc, "arch.bos_id=5 is not the BOS", "set arch.bos_id=1")
    [job] = job_dirs(tmp_path)
    assert read_results(job)["error"]["where"] == "data"


def _copy_demo(demo_cache, dest):
    [src] = [p for p in demo_cache.iterdir() if p.name.startswith("demo-")]
    shutil.copytree(src, dest)
    return dest


def test_corrupt_shard_header(tmp_path, demo_cache):
    data = _copy_demo(demo_cache, tmp_path / "data")
    val = sorted(data.glob("demo_val_*.bin"))[0]
    raw = bytearray(val.read_bytes())
    raw[0:4] = (12345).to_bytes(4, "little")
    val.write_bytes(bytes(raw))
    proc = run_golf([*FAST_RUN, "data=shards", f"data.root={data}", "data.vocab_size=1024"], tmp_path, demo_cache)
    _assert_clean_failure(proc, "bad magic", val.name)
    [job] = job_dirs(tmp_path)
    assert read_results(job)["status"] == "failed"


def test_a_train_token_past_the_vocabulary_fails_before_training(tmp_path, demo_cache):
    data = _copy_demo(demo_cache, tmp_path / "data")
    train = sorted(data.glob("demo_train_*.bin"))[-1]
    tokens = load_shard(train).copy()
    tokens[len(tokens) // 2] = 1024  # one id past the 1,024-token vocabulary, in the middle of the last shard
    write_shard(train, tokens)
    proc = run_golf([*FAST_RUN, "data=shards", f"data.root={data}", "data.vocab_size=1024"], tmp_path, demo_cache)
    _assert_clean_failure(proc, f"{train.name} contains token id 1024, but arch.vocab_size=1024")
    assert "step 1/" not in proc.stdout + proc.stderr  # refused before the first training step
    [job] = job_dirs(tmp_path)
    assert read_results(job)["status"] == "failed"


@pytest.mark.parametrize("overrides, needle", [
    (["arch.vocab_size=2048"], "arch.vocab_size=2048"),
    (["data.vocab_size=2048"], "1024"),
])
def test_vocab_mismatch_with_tokenizer(tmp_path, demo_cache, overrides, needle):
    data = _copy_demo(demo_cache, tmp_path / "data")
    proc = run_golf([*FAST_RUN, "data=shards", f"data.root={data}", "data.vocab_size=1024", *overrides],
                    tmp_path, demo_cache)
    _assert_clean_failure(proc, needle)
    [job] = job_dirs(tmp_path)
    assert read_results(job)["status"] == "failed"
