"""TTT and sliding eval end to end through the real CLIs: a 2-rank torchrun job (gloo), then
`python -m golf.ttt` on its artifact at world size 1 (same numbers), and the pre-quant research path."""

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import FAST_RUN, job_dirs, run_golf

TTT_RUN = [*FAST_RUN, "eval=sliding64", "eval.max_seqs=32", "ttt=eb_adaptive", "ttt.chunk_tokens=1024",
           "ttt.epochs=1"]


@pytest.fixture(scope="module")
def ttt_job(tmp_path_factory, demo_cache):
    out = tmp_path_factory.mktemp("ttt_job")
    proc = run_golf([*TTT_RUN, "launcher=torchrun", "launcher.nproc=2"], out, demo_cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [job] = job_dirs(out)
    return job, json.loads((job / "results.json").read_text())


def _golf_ttt(job, args, demo_cache):
    env = {**os.environ, "GOLF_CACHE": str(demo_cache)}
    proc = subprocess.run([sys.executable, "-m", "golf.ttt", str(job), *args], env=env, capture_output=True,
                          text=True, timeout=300, cwd=job)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_two_rank_job_reports_legal_ttt_as_headline(ttt_job):
    job, r = ttt_job
    m = r["metrics"]
    assert r["status"] == "completed"
    assert m["val_bpb"] == m["val_bpb_ttt"] == r["ttt"]["val_bpb"]
    assert m["val_bpb_sliding"] == pytest.approx(m["val_bpb_postquant"], abs=1e-9)  # stride 64 = seq_len 64
    checks = r["compliance"]["checks"]
    for name in ("each_token_scored_once", "score_before_update", "single_pass", "no_val_in_calibration"):
        assert checks[name]["pass"], (name, checks[name])
    assert checks["each_token_scored_once"]["value"]["scored"] == 32 * 64
    assert r["ttt"]["memorization"]["ttt_loop_bpb"] == m["val_bpb_ttt"]
    assert set(r["snr"]["mean"]) >= {"layer_00", "layer_01"} and r["snr"]["estimator"] == "eb_abs"
    assert (job / "snr_scales.png").stat().st_size > 0
    logged = [json.loads(line) for line in (job / "metrics.jsonl").read_text().splitlines()]
    assert [x["snr/layer_01"] for x in logged if "snr/layer_01" in x] and any("eval/bpb_sliding" in x for x in logged)
    assert [x["ttt/bpb"] for x in logged if "ttt/bpb" in x] == [m["val_bpb_ttt"]]
    assert r["ranks"][0]["val_bpb"] == r["ranks"][1]["val_bpb"]


def test_golf_ttt_at_world_size_1_matches_the_2_rank_job(ttt_job, demo_cache):
    job, r = ttt_job
    _golf_ttt(job, ["ttt=eb_adaptive", "ttt.chunk_tokens=1024", "ttt.epochs=1", "--tag", "w1"], demo_cache)
    one = json.loads((job / "ttt" / "w1.json").read_text())
    assert one["base"]["val_bpb"] == pytest.approx(r["metrics"]["val_bpb_sliding"], abs=1e-12)
    assert one["ttt_result"]["val_bpb"] == pytest.approx(r["metrics"]["val_bpb_ttt"], abs=1e-6)
    assert one["ttt_result"]["compliant"]
    assert (job / "ttt" / "w1_snr.png").stat().st_size > 0


def test_prequant_ttt_is_never_compliant_nor_headline(ttt_job, demo_cache):
    job, _ = ttt_job
    proc = _golf_ttt(job, ["ttt=prequant_adamw", "ttt.epochs=1"], demo_cache)
    out = json.loads((job / "ttt" / "prequant_adamw.json").read_text())["ttt_result"]
    assert not out["compliant"] and not out["legal"] and "C3" in out["reason"]
    assert not out["checks"]["score_before_update"]["pass"]
    assert "compliant: NO" in proc.stdout


def test_bad_ttt_options_fail_before_any_work(tmp_path, demo_cache):
    proc = run_golf([*FAST_RUN, "ttt=sgd", "ttt.chunk_tokens=100"], tmp_path, demo_cache)
    assert proc.returncode != 0
    assert "ttt.chunk_tokens=100 must be a multiple of the eval stride 64" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.rglob("model.golf"))  # refused before training


def test_report_rescored_lists_each_protocol_scored_on_the_artifact(ttt_job, demo_cache, tmp_path):
    job, r = ttt_job
    _golf_ttt(job, ["ttt=none", "--tag", "plain"], demo_cache)
    from golf.report import find_jobs

    records = {rec["settings"]["ttt"]: rec for rec in find_jobs([job], rescored=True)}
    assert records["plain"]["val_bpb"] == pytest.approx(r["metrics"]["val_bpb_sliding"], abs=1e-12)
    assert records["plain"]["ttt_s"] is None and records["plain"]["seed"] == r["seed"]
    assert records["eb_adaptive"]["val_bpb"] == r["metrics"]["val_bpb_ttt"]  # the training job's own record
    assert records["eb_adaptive"]["sliding_adapted_bpb"] == r["ttt"]["memorization"]["sliding_adapted_bpb"]
    assert records["prequant_adamw"]["compliant"] is False
    assert len(find_jobs([job])) == 1  # without --rescored only the job itself



@pytest.fixture(scope="module")
def ttt_record(ttt_job, tmp_path_factory):
    """The TTT job exported as a record, and its score command."""
    from golf.export import main as export

    record = tmp_path_factory.mktemp("ttt_record") / "record"
    assert export([str(ttt_job[0]), "--out", str(record)]) == 0
    [command] = [line for line in (record / "README.md").read_text().splitlines() if line.startswith("python score")]
    return record, command


def test_exported_script_reproduces_the_sliding_score(ttt_job, ttt_record, demo_cache):
    job, _ = ttt_job
    record, command = ttt_record
    assert "--stride" not in command  # stride 64 = seq_len 64 in this job: its windows are the full eval's
    without_ttt = re.sub(r" --ttt \S+ --seed \d+", "", command)
    proc = subprocess.run(without_ttt + " --stride 32", shell=True, cwd=record, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    _golf_ttt(job, ["ttt=none", "eval.stride=32", "--tag", "none_s32"], demo_cache)
    sliding = json.loads((job / "ttt" / "none_s32.json").read_text())["base"]
    assert f"val_bpb {sliding['val_bpb']:.8f}" in proc.stdout


def test_exported_record_reproduces_the_ttt_headline_from_the_artifact(ttt_job, ttt_record):
    """The record's score command runs the run's TTT protocol in one process on the artifact bytes."""
    _, r = ttt_job
    record, command = ttt_record
    assert (record / "score_artifact.py").stat().st_size == r["artifact"]["bytes_code"]
    assert "--ttt ttt.json --seed 1337" in command
    assert json.loads((record / "ttt.json").read_text())["name"] == "eb_adaptive"
    proc = subprocess.run(command, shell=True, cwd=record, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = float(proc.stdout.split("val_bpb ")[1].split()[0])
    assert printed == pytest.approx(r["metrics"]["val_bpb"], abs=2e-6)  # the 2-rank run, scored here by 1 process
    assert "score_before_update pass" in proc.stdout and "FAIL" not in proc.stdout
    assert f"val_bpb {r['metrics']['val_bpb']:.8f}" in (record / "README.md").read_text()
