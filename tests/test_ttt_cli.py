"""TTT and sliding eval end to end through the real CLIs: a 2-rank torchrun job (gloo), then
`python -m golf.ttt` on its artifact at world size 1 (same numbers), and the pre-quant research path."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import sentencepiece as spm
from conftest import FAST_RUN, job_dirs, run_golf
from omegaconf import OmegaConf

from golf.data.shards import find_shards, load_shard

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
    assert m["val_bpb"] == m["val_bpb_ttt"] == r["ttt"]["val_bpb"] and m["headline"] == "ttt"
    assert m["val_bpb_sliding"] == pytest.approx(m["val_bpb_roundtrip"], abs=1e-9)  # stride 64 = seq_len 64
    assert r["timing"]["eval_measured_s"] == r["timing"]["ttt_s"]  # the eval timer counts the headline protocol
    checks = r["compliance"]["checks"]
    for name in ("each_token_scored_once", "score_before_update", "single_pass", "no_val_in_calibration"):
        assert checks[name]["pass"], (name, checks[name])
    assert checks["each_token_scored_once"]["value"]["scored"] == 32 * 64
    # C7: the <unk> targets among the 32 x 64 scored ones, counted from the val shards and the tokenizer
    data = OmegaConf.load(job / "config.yaml").data
    sp = spm.SentencePieceProcessor(model_file=data.tokenizer_path)
    val = np.concatenate([load_shard(p) for p in find_shards(data.val_pattern)])
    assert m["unk_targets"] == int((val[1 : 32 * 64 + 1] == sp.unk_id()).sum())
    assert r["ttt"]["memorization"]["ttt_loop_bpb"] == m["val_bpb_ttt"]
    ttt_snr = r["snr"]["ttt"]
    assert set(ttt_snr["mean"]["eb_abs_clipped"]) >= {"layer_00", "layer_01"} and ttt_snr["estimator"] == "eb_abs"
    assert ttt_snr["applied"] and r["snr"]["train"]["steps"] > 0 and r["snr"]["plot"] == "snr_scales.png"
    assert (job / "snr_scales.png").stat().st_size > 0
    logged = [json.loads(line) for line in (job / "metrics.jsonl").read_text().splitlines()]
    assert [x["ttt/snr/eb_clipped/layer_01"] for x in logged if "ttt/snr/eb_clipped/layer_01" in x]
    assert any("eval/bpb_sliding" in x for x in logged)
    assert [x["eval/bpb_ttt"] for x in logged if "eval/bpb_ttt" in x] == [m["val_bpb_ttt"]]
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


def test_an_unknown_protocol_is_one_line_naming_it(ttt_job, demo_cache):
    job, _ = ttt_job
    env = {**os.environ, "GOLF_CACHE": str(demo_cache)}
    proc = subprocess.run([sys.executable, "-m", "golf.ttt", str(job), "ttt=bogus"], env=env, capture_output=True,
                          text=True, timeout=300, cwd=job)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["error: In 'config': Could not find 'ttt/bogus' (the options are the "
                                                "files in golf/conf/<group>/)"]


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



def test_the_record_scores_the_ttt_headline_from_the_artifact_in_one_process(ttt_job, tmp_path):
    """The exported train_gpt.py, in score-only mode, runs the run's TTT protocol on the artifact bytes."""
    from golf.export import main as export

    job, r = ttt_job
    record = tmp_path / "record"
    assert export([str(job), "--out", str(record)]) == 0
    assert (record / "train_gpt.py").stat().st_size == r["artifact"]["bytes_code"]
    env = {**os.environ, "DATA_PATH": r["data"]["root"], "SCORE_ARTIFACT": str(job / "artifact" / "model.golf"),
           "SEED": str(r["seed"]), "PYTHONPATH": ""}
    proc = subprocess.run([sys.executable, "train_gpt.py"], cwd=record, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = float(re.search(r"final val_bpb:(\S+)", proc.stdout + proc.stderr).group(1))
    assert printed == pytest.approx(r["metrics"]["val_bpb"], abs=2e-6)  # the 2-rank run, scored here by 1 process


def test_golf_ttt_runs_batched_lora_from_the_length_queue(ttt_job, demo_cache):
    """`python -m golf.ttt` on the 2-rank job's artifact: the lora_batched preset (shrunk to the demo model) is
    legal, states its queue, and scores as the same documents taken one at a time in val order."""
    job, _ = ttt_job
    small = ["ttt.lora_rank=4", "ttt.lora_chunk=16", "ttt.lr=0.01"]
    _golf_ttt(job, ["ttt=lora_batched", "ttt.lora_batch_docs=8", *small, "--tag", "batched"], demo_cache)
    _golf_ttt(job, ["ttt=lora_batched", "ttt.lora_batch_docs=1", "ttt.lora_queue=stream", *small, "--tag", "alone"],
              demo_cache)
    batched, alone = (json.loads((job / "ttt" / f"{tag}.json").read_text())["ttt_result"] for tag in ("batched",
                                                                                                       "alone"))
    assert batched["compliant"] and all(c["pass"] for c in batched["checks"].values())
    assert batched["documents"] > 1 and batched["queue"]["batch_docs"] == min(8, batched["documents"])
    assert batched["queue"]["order"] == "length"
    assert alone["queue"]["order"] == "stream" and alone["queue"]["batches"] == alone["documents"]
    assert batched["val_bpb"] == pytest.approx(alone["val_bpb"], rel=1e-5)
    assert batched["val_bpb"] < json.loads((job / "ttt" / "batched.json").read_text())["base"]["val_bpb"]
