"""golf.report on a real sweep with failed jobs, its outputs (Markdown, CSV, PNG, offline W&B
table read back), and the statistics behind the record bar."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from golf.ablation_chart import ablation_figure
from golf.report import assign_groups, chart_title, main, markdown, summarize, varying_keys, welch_p_less


@pytest.fixture(scope="module")
def report(tiny_sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert main([str(tiny_sweep), "--baseline", "arch.num_kv_heads=1", "--out", str(out)]) == 0
    return out


def test_groups_by_what_varies_and_lists_failed_jobs_with_their_error(report):
    groups = list(csv.DictReader(open(report / "groups.csv")))
    assert [(g["group"], g["n"], g["failed"]) for g in groups] == [("arch.num_kv_heads=1", "2", "0"),
                                                                 ("arch.num_kv_heads=3", "0", "2")]
    jobs = list(csv.DictReader(open(report / "jobs.csv")))
    failed = [j for j in jobs if j["status"] == "failed"]
    assert len(jobs) == 4 and len(failed) == 2
    assert all("must divide arch.num_heads" in j["error"] for j in failed)
    md = (report / "report.md").read_text()
    assert "## Failed jobs" in md and md.count("ConfigError: invalid config: arch.num_kv_heads=3") == 2
    assert (report / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_numbers_are_those_of_the_jobs(report, tiny_sweep):
    done = [json.loads(p.read_text()) for p in tiny_sweep.rglob("results.json")]
    bpbs = sorted(r["metrics"]["val_bpb"] for r in done if r["status"] == "completed")
    [base] = [g for g in csv.DictReader(open(report / "groups.csv")) if g["n"] == "2"]
    assert float(base["val_bpb_mean"]) == pytest.approx(sum(bpbs) / 2, abs=1e-12)
    assert float(base["val_bpb_std"]) == pytest.approx(abs(bpbs[0] - bpbs[1]) / 2 ** 0.5, abs=1e-12)


def test_wandb_table_reads_back_offline_equal_to_the_csv(report, tiny_sweep):
    [run_dir] = (report / "wandb").glob("offline-run-*")
    records = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run_dir)],
                             capture_output=True, text=True, timeout=120, check=True).stdout.splitlines()
    [run] = [r["run"] for r in map(json.loads, records) if r["type"] == "run"]
    assert run["run_group"] == json.loads((tiny_sweep / "launch.json").read_text())["group"]  # next to its jobs
    inspected = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--summary", "--json", str(run_dir)],
                               capture_output=True, text=True, timeout=120)
    assert inspected.returncode == 0, inspected.stderr
    record = json.loads(inspected.stdout)
    assert record["summary"]["report/groups"]["_type"] == "table-file"
    [table] = (run_dir / "files" / "media" / "table" / "report").glob("groups_*.table.json")
    table = json.loads(table.read_text())
    rows = list(csv.DictReader(open(report / "groups.csv")))
    assert [r[0] for r in table["data"]] == [r["group"] for r in rows]
    assert table["data"][0][table["columns"].index("val_bpb_mean")] == pytest.approx(float(rows[0]["val_bpb_mean"]))


def _job(group_value, seed, loss):
    return {"job": f"j{seed}", "seed": seed, "settings": {"ttt": group_value}, "status": "completed", "error": "",
            "val_bpb": loss / 1.5, "val_loss": loss, "bytes_total": 100, "train_s": 1.0, "eval_s": 1.0, "ttt_s": None,
            "compliant": True}


@pytest.mark.parametrize("windows, flagged", [(("sliding", "sliding"), False), (("full", "sliding"), True)])
def test_groups_that_score_with_different_windows_are_flagged(windows, flagged):
    """A TTT row on sliding windows against a sliding row is like with like; against a full-window row its Δ
    would credit the sliding protocol's gain to TTT."""
    jobs = [{**_job("none", s, 3.0 + s / 1000), "metric": "sliding" if windows[0] == "sliding" else "roundtrip",
             "val_bpb_roundtrip": 2.0, "windows": windows[0]} for s in (1, 2)]
    jobs += [{**_job("sgd", s, 2.99 + s / 1000), "metric": "ttt", "val_bpb_roundtrip": 2.0, "windows": windows[1]}
             for s in (1, 2)]
    text = markdown(summarize(jobs, assign_groups(jobs), "ttt=none"), jobs, "ttt=none", ["here"])
    assert ("score with different windows" in text) == flagged


def test_record_bar_needs_both_the_margin_and_the_p_value():
    jobs = [_job("none", s, 3.000 + d) for s, d in [(1, 0.001), (2, -0.001), (3, 0.0)]]
    jobs += [_job("sgd", s, 2.990 + d) for s, d in [(1, 0.001), (2, -0.001), (3, 0.0)]]   # -0.010 nats, tight
    jobs += [_job("lora", s, 2.997 + d) for s, d in [(1, 0.0005), (2, -0.0005), (3, 0.0)]]  # -0.003 nats
    rows = {r["group"]: r for r in summarize(jobs, assign_groups(jobs), "ttt=none")}
    assert rows["ttt=sgd"]["delta_nats"] == pytest.approx(-0.010) and rows["ttt=sgd"]["p_value"] < 0.01
    assert rows["ttt=sgd"]["record_bar"] and not rows["ttt=lora"]["record_bar"] and not rows["ttt=none"]["record_bar"]
    assert welch_p_less([3.0, 3.1, 2.9], [3.0, 3.1, 2.9]) == pytest.approx(0.5)
    assert welch_p_less([3.0], [3.0, 3.1]) is None


# Per-seed val_loss of three groups, and golden p-values computed once for them with scipy.stats (ttest_ind with
# equal_var=False and ttest_1samp on the per-seed differences, alternative="less"). The comments give the values a
# wrong test would report instead: Student's t (equal variances) or two-sided.
BASELINE = {1: 3.000, 2: 3.020, 3: 2.985, 4: 3.012, 5: 2.995}
BETTER = {1: 2.990, 2: 2.993, 3: 2.988}  # 3 of the 5 seeds, much tighter: Welch and Student differ
WORSE = {1: 3.002, 2: 3.021, 3: 2.988, 4: 3.0135, 5: 2.9975}  # worse on every seed


def test_p_values_are_one_sided_welch_and_paired_on_golden_samples():
    jobs = [_job(group, seed, loss) for group, losses in (("none", BASELINE), ("sgd", BETTER), ("lora", WORSE))
            for seed, loss in losses.items()]
    rows = {r["group"]: r for r in summarize(jobs, assign_groups(jobs), "ttt=none")}
    better, worse, base = rows["ttt=sgd"], rows["ttt=lora"], rows["ttt=none"]
    assert better["p_value"] == pytest.approx(0.06173542629591605, rel=1e-9)  # Student 0.0985, two-sided 0.123
    assert better["p_paired"] == pytest.approx(0.16094802016823104, rel=1e-9)  # two-sided 0.322
    assert worse["p_value"] == pytest.approx(0.5900168273836586, rel=1e-9)  # two-sided 0.820
    # Two-sided, a consistently worse group would look significant (p = 0.0048); one-sided it is nowhere near.
    assert worse["p_paired"] == pytest.approx(0.9975936608349771, rel=1e-9)
    assert base["p_value"] is None and base["p_paired"] is None
    assert base["val_loss_std"] == pytest.approx(0.013831124321616118, rel=1e-12)  # sample std; population: 0.01237
    assert not better["record_bar"] and not worse["record_bar"]


def test_chart_shows_the_difference_from_the_baseline_and_bytes_from_zero_titled_by_sweep_and_keys():
    jobs = [_job("none", s, 3.000 + d) for s, d in [(1, 0.001), (2, -0.001)]]
    jobs += [_job("sgd", s, 2.990 + d) for s, d in [(1, 0.002), (2, -0.002)]]
    rows = summarize(jobs, assign_groups(jobs), "ttt=none")
    fig = ablation_figure(rows, "ttt=none", chart_title("ablate_ttt", varying_keys(jobs), len(jobs)))
    delta, size = fig.axes
    heights = [bar.get_height() for bar in delta.patches]
    assert heights == pytest.approx([0.0, (2.990 - 3.000) / 1.5])  # Δ val_bpb: the baseline sits at 0
    assert "Δ val_bpb vs ttt=none (2.0000)" in delta.get_ylabel()
    assert size.get_ylim()[0] == 0 and [bar.get_height() for bar in size.patches] == [100, 100]
    assert fig._suptitle.get_text().startswith("ablate_ttt: ttt (4 jobs)")


def test_nothing_to_report_is_a_one_line_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: no results.json under {tmp_path}")


def test_a_truncated_results_json_is_one_failed_row_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    good, torn = tmp_path / "good", tmp_path / "torn"
    good.mkdir()
    torn.mkdir()
    (good / "results.json").write_text(json.dumps({"status": "failed", "seed": 1, "error": {"type": "DataError",
                                                                                           "message": "x"}}))
    (torn / "results.json").write_text('{"status": "completed", "seed": 2, "metr')  # a disk filled mid-write
    assert main([str(good), str(torn), "--out", str(tmp_path / "out")]) == 0
    rows = {row["job"]: row for row in csv.DictReader((tmp_path / "out" / "jobs.csv").open())}
    assert rows[str(good)]["error"] == "DataError: x"
    assert rows[str(torn)]["status"] == "failed"
    assert rows[str(torn)]["error"].startswith(f"CorruptFile: {torn / 'results.json'} is not valid JSON")


def test_a_job_without_a_final_status_is_running_while_its_lock_is_held_and_unfinished_after(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    jobs = {name: tmp_path / name for name in ("done", "live", "killed", "preempted")}
    for seed, (name, job) in enumerate(jobs.items()):
        job.mkdir()
        results = {"status": {"done": "completed", "preempted": "interrupted"}.get(name, "running"), "seed": seed,
                   "overrides": [f"seed={seed}"]}
        if name == "done":
            results["metrics"] = {"val_bpb": 2.5, "val_loss": 4.2, "headline": "roundtrip"}
        if name == "preempted":
            results["interrupted"] = {"message": "interrupted by SIGUSR1 at step 40",
                                      "resume": "rerun with resume=auto"}
        (job / "results.json").write_text(json.dumps(results))
    (jobs["killed"] / ".lock").touch()  # a SIGKILLed job leaves its lock file, and the kernel its lock
    # a live job holds an flock on its lock file; held here by another process, as a job's worker holds it
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from golf.resume import JobLock; "
                               "JobLock(sys.argv[1]).acquire(); print('held', flush=True); sys.stdin.read()",
                               str(jobs["live"])], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main([*map(str, jobs.values()), "--out", str(tmp_path / "out")]) == 0
    finally:
        holder.communicate("")
    rows = {Path(row["job"]).name: row for row in csv.DictReader((tmp_path / "out" / "jobs.csv").open())}
    assert {name: row["status"] for name, row in rows.items()} == {
        "done": "completed", "live": "running", "killed": "unfinished", "preempted": "unfinished"}
    assert rows["killed"]["error"].startswith("Unfinished: no final status and no live process")
    assert rows["preempted"]["error"] == "Interrupted: interrupted by SIGUSR1 at step 40; rerun with resume=auto"
    [group] = csv.DictReader((tmp_path / "out" / "groups.csv").open())
    assert (group["n"], group["failed"], group["unfinished"], group["running"]) == ("1", "0", "2", "1")
    assert "| 1 (+2 unfinished, +1 running) |" in (tmp_path / "out" / "report.md").read_text()


class _FakeRun:
    """What wandb.Api().runs() yields, for the network that is not here."""

    def __init__(self, run_id, ttt, seed, bpb, state="finished", lr="0.01"):
        self.id, self.state, self.group = run_id, state, "2026-01-01_ablate_ttt_abc123"
        self.config = {"arch": "tiny", "ttt": ttt, "quant": "int8_zlib", "seed": seed, "sweep": "ablate_ttt",
                       "overrides": [f"ttt={ttt}", f"seed={seed}", f"ttt.lr={lr}"], "ttt/lr": float(lr)}
        self.summary = {"final/val_bpb": bpb, "final/val_loss": bpb * 0.6931 * 2.07, "final/bytes_total": 1_000_000,
                        "final/compliant": True, "final/train_s": 60.0 + seed} if state == "finished" else {}


def test_from_wandb_builds_the_same_tables(monkeypatch, tmp_path):
    import wandb

    runs = [_FakeRun(f"r{i}", ttt, seed, bpb) for i, (ttt, seed, bpb) in enumerate(
        [("none", 1, 2.40), ("none", 2, 2.41), ("none", 3, 2.42),
         ("sgd", 1, 2.30), ("sgd", 2, 2.31), ("sgd", 3, 2.32)])]
    runs += [_FakeRun("r9", "sgd", 4, None, state="crashed"), _FakeRun("r10", "sgd", 5, None, state="running")]
    seen = {}

    class FakeApi:
        def runs(self, project, filters):
            seen.update(project=project, filters=filters)
            return runs

    monkeypatch.setattr(wandb, "Api", FakeApi)
    out = tmp_path / "rep"
    assert main(["--from-wandb", "me/golf", "--group", "ablate_ttt", "--baseline", "ttt=none", "--out", str(out),
                 "--wandb-mode", "disabled"]) == 0
    assert seen == {"project": "me/golf", "filters": {"group": "ablate_ttt", "jobType": {"$ne": "report"}}}
    groups = {g["group"]: g for g in csv.DictReader(open(out / "groups.csv"))}
    assert (groups["ttt=none"]["n"], groups["ttt=sgd"]["n"], groups["ttt=sgd"]["failed"]) == ("3", "3", "1")
    assert groups["ttt=sgd"]["running"] == "1"
    assert float(groups["ttt=sgd"]["val_bpb_mean"]) == pytest.approx(2.31)
    assert float(groups["ttt=sgd"]["p_value"]) < 0.01 and groups["ttt=sgd"]["record_bar"] == "True"
    assert "W&B state crashed" in (out / "report.md").read_text()
    assert float(groups["ttt=none"]["train_s_mean"]) == pytest.approx(62.0)


def test_from_wandb_keeps_override_ablations_apart(monkeypatch, tmp_path):
    """Two learning rates of one ttt option: the same group choices, told apart by the runs' overrides."""
    import wandb

    runs = [_FakeRun(f"r{lr}{seed}", "sgd", seed, bpb, lr=lr)
            for lr, bpbs in (("0.01", (2.40, 2.41)), ("0.02", (2.30, 2.31))) for seed, bpb in zip((1, 2), bpbs)]

    class FakeApi:
        def runs(self, project, filters):
            return runs

    monkeypatch.setattr(wandb, "Api", FakeApi)
    out = tmp_path / "rep"
    assert main(["--from-wandb", "me/golf", "--out", str(out), "--wandb-mode", "disabled"]) == 0
    groups = {g["group"]: g for g in csv.DictReader(open(out / "groups.csv"))}
    assert set(groups) == {"ttt.lr=0.01", "ttt.lr=0.02"}
    assert float(groups["ttt.lr=0.02"]["val_bpb_mean"]) == pytest.approx(2.305)


def test_from_wandb_without_network_is_a_one_line_error(monkeypatch, capsys):
    import wandb

    class OfflineApi:
        def runs(self, project, filters):
            raise ConnectionError("no route to api.wandb.ai")

    monkeypatch.setattr(wandb, "Api", OfflineApi)
    assert main(["--from-wandb", "me/golf", "--wandb-mode", "disabled"]) == 2
    assert "cannot read W&B project me/golf (ConnectionError" in capsys.readouterr().err
