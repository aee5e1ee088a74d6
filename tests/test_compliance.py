"""The compliance verdict of a whole run, read from results.json: the artifact limit counts the code bytes
too (model + code), and one failing check makes the run non-compliant, or fails it when the limit is enforced."""

import pytest
from conftest import FAST_RUN, job_dirs, read_results, run_golf

from golf.data.shards import find_shards, load_shard, write_shard

# Between this tiny run's model bytes (~231 kB) and its model + code bytes (~320 kB).
LIMIT = 280_000


@pytest.fixture(scope="module")
def small_val(tmp_path_factory, demo_cache) -> str:
    """The first 64 sequences of the demo val split as a split of its own, so a run can score all of it in a
    blink (a capped eval, eval.max_seqs, is never compliant)."""
    [shard] = find_shards(f"{demo_cache}/demo-*/demo_val_*.bin")
    out = tmp_path_factory.mktemp("small_val")
    write_shard(out / "small_val_000000.bin", load_shard(shard)[: 64 * 64 + 1])
    return f"{out}/small_val_*.bin"


@pytest.fixture(scope="module")
def over_limit_by_code(tmp_path_factory, demo_cache, small_val):
    """A run whose model alone fits LIMIT but whose model + code does not, with the limit reported, not enforced,
    and everything else compliant (the whole, small, val split is scored)."""
    out = tmp_path_factory.mktemp("over_limit")
    proc = run_golf([*FAST_RUN, "eval.max_seqs=0", f"data.val_pattern={small_val}", "budget=unlimited",
                     f"budget.artifact_limit_bytes={LIMIT}"], out, demo_cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [job] = job_dirs(out)
    return read_results(job), proc.stdout


def test_code_bytes_count_against_the_artifact_limit(over_limit_by_code):
    results, stdout = over_limit_by_code
    art, compliance = results["artifact"], results["compliance"]
    assert art["bytes_model"] < LIMIT < art["bytes_total"] == art["bytes_model"] + art["bytes_code"]
    assert compliance["checks"]["artifact_under_limit"] == {"pass": False, "value": art["bytes_total"], "limit": LIMIT}
    assert art["headroom_bytes"] == LIMIT - art["bytes_total"] < 0
    assert compliance["compliant"] is False
    assert "compliant: NO (artifact_under_limit)" in stdout


def test_every_other_check_passes_so_the_limit_alone_decides(over_limit_by_code):
    results, _ = over_limit_by_code
    failing = [name for name, check in results["compliance"]["checks"].items() if not check["pass"]]
    assert failing == ["artifact_under_limit"]


def test_an_enforced_limit_fails_the_run_naming_the_overshoot(tmp_path, demo_cache):
    proc = run_golf([*FAST_RUN, "budget=cpu_smoke", f"budget.artifact_limit_bytes={LIMIT}",
                     "budget.check_estimate=false"], tmp_path, demo_cache)
    assert proc.returncode != 0
    [job] = job_dirs(tmp_path)
    results = read_results(job)
    assert results["status"] == "failed" and results["error"]["type"] == "ArtifactError"
    assert f"exceeds the {LIMIT:,} B limit" in results["error"]["message"]
    assert "metrics" not in results or "val_bpb" not in results["metrics"]  # never scored
