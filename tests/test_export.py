"""golf.export: a record folder in the official layout whose train_gpt.py is the code every seed counted,
whose submission.json holds the official fields with the seeds' statistics, and which refuses what a
reviewer could not trust."""

import json
import shutil
import statistics

import pytest

from golf.export import main
from golf.record.script import SCRIPT_NAME


@pytest.fixture(scope="module")
def completed(tiny_sweep):
    return sorted(p.parent for p in tiny_sweep.rglob("results.json")
                  if json.loads(p.read_text())["status"] == "completed")


@pytest.fixture(scope="module")
def record(completed, tmp_path_factory):
    out = tmp_path_factory.mktemp("record") / "rec"
    assert main([*map(str, completed), "--out", str(out), "--author", "A. Golfer", "--github-id", "golfer",
                 "--with-artifacts"]) == 0
    return out


def test_the_record_folder_has_the_official_layout_and_fields(record, completed):
    sub = json.loads((record / "submission.json").read_text())
    runs = [json.loads((d / "results.json").read_text()) for d in completed]
    for key in ("author", "github_id", "name", "blurb", "date", "val_loss", "val_bpb", "bytes_total", "bytes_code"):
        assert key in sub, key
    assert sub["author"] == "A. Golfer" and sub["github_id"] == "golfer"
    bpbs = [r["metrics"]["val_bpb"] for r in runs]
    assert sub["seeds"] == [1, 2] and sub["val_bpb"] == pytest.approx(statistics.fmean(bpbs), abs=1e-12)
    assert sub["val_bpb_std"] == pytest.approx(statistics.stdev(bpbs), abs=1e-12)  # the sample std (n - 1)
    assert sub["val_bpb_std"] != pytest.approx(statistics.pstdev(bpbs), abs=1e-12)
    assert sub["bytes_total"] == max(r["artifact"]["bytes_total"] for r in runs)
    assert sub["metric"] == "roundtrip"
    for name in ("README.md", SCRIPT_NAME, "requirements.txt", "train_seed1.log", "train_seed2.log",
                 "artifacts/seed1.golf"):
        assert (record / name).is_file(), name
    assert (record / SCRIPT_NAME).read_bytes() == (completed[0] / SCRIPT_NAME).read_bytes()
    assert (record / SCRIPT_NAME).stat().st_size == sub["bytes_code"] == runs[0]["artifact"]["bytes_code"]
    readme = (record / "README.md").read_text()
    assert f"{sub['val_bpb']:.8f}" in readme and "C3 score before update" in readme
    assert "SEED=1" in readme and f"python {SCRIPT_NAME}" in readme


# The per-seed val_bpb of an official record (openai/parameter-golf records/track_10min_16mb/
# 2026-04-09_SP8192_3LayerRecur_ParResid_QK525_LegalTTT): its submission.json gives val_bpb 1.08100 and
# val_bpb_std 0.00020, the sample std (ddof=1: 0.000197); the population std (ddof=0) would be 0.00016.
OFFICIAL_SEED_BPBS = (1.08079, 1.08103, 1.08118)


def test_record_std_is_the_sample_std_of_the_official_records(completed, tmp_path):
    dirs = []
    for i, bpb in enumerate(OFFICIAL_SEED_BPBS):
        job = shutil.copytree(completed[i % len(completed)], tmp_path / f"seed{100 + i}")
        results = json.loads((job / "results.json").read_text())
        results["seed"], results["metrics"]["val_bpb"] = 100 + i, bpb
        (job / "results.json").write_text(json.dumps(results))
        dirs.append(str(job))
    assert main([*dirs, "--out", str(tmp_path / "record")]) == 0
    sub = json.loads((tmp_path / "record" / "submission.json").read_text())
    assert (round(sub["val_bpb"], 5), round(sub["val_bpb_std"], 5)) == (1.08100, 0.00020)
    assert sub["val_bpb_std"] == pytest.approx(0.00019672315572911284, rel=1e-9)


def test_compliant_only_if_every_seed_is(completed, tmp_path):
    """One compliant and one non-compliant seed make a non-compliant record."""
    copies = [shutil.copytree(d, tmp_path / d.name) for d in completed]
    results = json.loads((copies[0] / "results.json").read_text())
    results["compliance"] = {"compliant": True, "failed": [], "checks": {}}
    (copies[0] / "results.json").write_text(json.dumps(results))
    assert main([*map(str, copies), "--out", str(tmp_path / "rec")]) == 0
    assert json.loads((tmp_path / "rec" / "submission.json").read_text())["compliance"]["compliant"] is False


def test_refuses_failed_jobs_mixed_configs_altered_files_and_a_used_folder(tiny_sweep, completed, tmp_path, capsys):
    failed = [p.parent for p in tiny_sweep.rglob("results.json") if json.loads(p.read_text())["status"] == "failed"]
    assert main([str(completed[0]), str(failed[0]), "--out", str(tmp_path / "a")]) == 2
    assert "is failed" in capsys.readouterr().err
    other = shutil.copytree(completed[1], tmp_path / "other")
    (other / "config.yaml").write_text((other / "config.yaml").read_text().replace("max_seqs: 48", "max_seqs: 40"))
    assert main([str(completed[0]), str(other), "--out", str(tmp_path / "b")]) == 2
    assert "differs from" in capsys.readouterr().err
    edited = shutil.copytree(completed[1], tmp_path / "edited")
    (edited / SCRIPT_NAME).write_bytes((edited / SCRIPT_NAME).read_bytes() + b"\n")
    assert main([str(completed[0]), str(edited), "--out", str(tmp_path / "c")]) == 2
    assert "not the script the other seeds ran" in capsys.readouterr().err
    swapped = shutil.copytree(completed[1], tmp_path / "swapped")
    shutil.copyfile(completed[0] / "artifact" / "model.golf", swapped / "artifact" / "model.golf")
    assert main([str(completed[0]), str(swapped), "--out", str(tmp_path / "d"), "--with-artifacts"]) == 2
    assert "the artifact was replaced" in capsys.readouterr().err
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "old.txt").write_text("stale")
    assert main([*map(str, completed), "--out", str(tmp_path / "used")]) == 2
    assert "is not empty" in capsys.readouterr().err
