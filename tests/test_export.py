"""golf.export: a record folder whose scoring script is exactly bytes_code and reproduces the score."""

import json
import shutil
import subprocess
import sys

import pytest
from conftest import run_printed_command

from golf.export import main
from golf.quant.code_bytes import SCRIPT_NAME


@pytest.fixture(scope="module")
def completed(tiny_sweep):
    return sorted(p.parent for p in tiny_sweep.rglob("results.json")
                  if json.loads(p.read_text())["status"] == "completed")


# The per-seed val_bpb of an official record (openai/parameter-golf records/track_10min_16mb/
# 2026-04-09_SP8192_3LayerRecur_ParResid_QK525_LegalTTT): its submission.json gives val_bpb 1.08100 and
# val_bpb_std 0.00020, the sample std (ddof=1: 0.000197); the population std (ddof=0) would be 0.00016.
OFFICIAL_SEED_BPBS = (1.08079, 1.08103, 1.08118)


def _as_seeds(completed, tmp_path, bpbs, compliant) -> list[str]:
    """Copies of the sweep's completed jobs, one per seed 100, 101, ...: the same config with the given val_bpb
    and compliance (a compliant seed passes every check)."""
    dirs = []
    for i, (bpb, ok) in enumerate(zip(bpbs, compliant)):
        job = shutil.copytree(completed[i % len(completed)], tmp_path / f"seed{100 + i}")
        results = json.loads((job / "results.json").read_text())
        results["seed"], results["metrics"]["val_bpb"] = 100 + i, bpb
        compliance = results["compliance"]
        if ok:
            compliance["checks"] = {k: {**c, "pass": True} for k, c in compliance["checks"].items()}
            compliance["compliant"] = True
        assert compliance["compliant"] is ok
        (job / "results.json").write_text(json.dumps(results))
        dirs.append(str(job))
    return dirs


@pytest.fixture(scope="module")
def record(completed, tmp_path_factory):
    out = tmp_path_factory.mktemp("record")
    assert main([*map(str, completed), "--out", str(out)]) == 0
    return out


def test_submission_has_the_official_fields(record, completed):
    sub = json.loads((record / "submission.json").read_text())
    runs = [json.loads((d / "results.json").read_text()) for d in completed]
    assert [s["seed"] for s in sub["seed_results"]] == [r["seed"] for r in runs] == [1, 2]
    assert sub["val_bpb"] == pytest.approx(sum(r["metrics"]["val_bpb"] for r in runs) / 2, abs=1e-12)
    assert sub["bytes_total"] == max(r["artifact"]["bytes_total"] for r in runs)
    assert sub["compliance"]["compliant"] is False  # eval.max_seqs caps the val split in FAST_RUN
    for name in ("README.md", "config.yaml", "train_seed1.log", "train_seed2.log", "artifacts/seed1.golf"):
        assert (record / name).is_file()
    assert f"{sub['val_bpb']:.8f}" in (record / "README.md").read_text()


def test_record_std_is_the_sample_std_of_the_official_records(completed, tmp_path):
    out = tmp_path / "record"
    assert main([*_as_seeds(completed, tmp_path, OFFICIAL_SEED_BPBS, [True] * 3), "--out", str(out)]) == 0
    sub = json.loads((out / "submission.json").read_text())
    assert (round(sub["val_bpb"], 5), round(sub["val_bpb_std"], 5)) == (1.08100, 0.00020)
    assert sub["val_bpb_std"] == pytest.approx(0.00019672315572911284, rel=1e-9)
    assert sub["compliance"]["compliant"] is True


def test_a_record_is_compliant_only_if_every_seed_is(completed, tmp_path):
    out = tmp_path / "record"
    assert main([*_as_seeds(completed, tmp_path, OFFICIAL_SEED_BPBS, [True, False, True]), "--out", str(out)]) == 0
    sub = json.loads((out / "submission.json").read_text())
    assert [sub["compliance"]["per_seed"][str(s)]["compliant"] for s in sub["seeds"]] == [True, False, True]
    assert sub["compliance"]["compliant"] is False
    assert "compliant: no" in (out / "README.md").read_text()


def test_the_script_is_bytes_code_and_reproduces_the_score_from_the_artifact(record, completed):
    script = record / SCRIPT_NAME
    results = json.loads((completed[0] / "results.json").read_text())
    assert script.stat().st_size == results["artifact"]["bytes_code"]
    cfg = results["data"]
    command = [line for line in (record / "README.md").read_text().splitlines() if line.startswith("python score")]
    assert command and cfg["root"] in command[0]
    proc = run_printed_command(command[0], record, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"val_bpb {results['metrics']['val_bpb']:.8f}" in proc.stdout
    # The golf modules come from the script itself, not from the installed package.
    probe = (f"import runpy; runpy.run_path({str(script)!r}, run_name='probe'); import golf.quant.artifact as m; "
             f"print(type(m.__spec__.loader).__name__)")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert loaded.stdout.strip() == "EmbeddedGolf", loaded.stderr


def test_refuses_failed_jobs_mixed_configs_and_changed_code(tiny_sweep, completed, tmp_path, capsys):
    failed = [p.parent for p in tiny_sweep.rglob("results.json") if json.loads(p.read_text())["status"] == "failed"]
    assert main([str(completed[0]), str(failed[0]), "--out", str(tmp_path / "a")]) == 2
    assert "is failed" in capsys.readouterr().err
    other = shutil.copytree(completed[1], tmp_path / "other")
    (other / "config.yaml").write_text((other / "config.yaml").read_text().replace("max_seqs: 48", "max_seqs: 40"))
    assert main([str(completed[0]), str(other), "--out", str(tmp_path / "b")]) == 2
    assert "differs from" in capsys.readouterr().err
    stale = shutil.copytree(completed[1], tmp_path / "stale")
    results = json.loads((stale / "results.json").read_text())
    results["artifact"]["bytes_code"] -= 1
    (stale / "results.json").write_text(json.dumps(results))
    assert main([str(completed[0]), str(stale), "--out", str(tmp_path / "c")]) == 2
    assert "counted bytes_code" in capsys.readouterr().err
