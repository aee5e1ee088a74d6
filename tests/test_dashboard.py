"""W&B for ablations on the shared real sweep (tiny_sweep: arch.num_kv_heads=1,3 x seed=1,2 with offline W&B;
kv=3 fails validation): its runs, read back from their .wandb logs, share the launch's group and are told apart
by job type, name and tags; the dashboards the sweep's Hydra callback wrote (at exit, as a job failed) validate
with wandb-workspaces' own models; `publish` syncs the runs and saves both views through a faked network (the
only fake)."""

import json
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import wandb_workspaces.reports.v2 as wr
import wandb_workspaces.workspaces as ws
from conftest import FAST_RUN, job_dirs, read_results, run_golf
from wandb_workspaces.reports.v2 import internal as wr_internal
from wandb_workspaces.workspaces import internal as ws_internal

from golf.dashboard.__main__ import main as dashboard_main
from golf.optim.gradient_snr import SERIES

CELL = "arch.num_kv_heads=1"  # the group whose jobs completed


@pytest.fixture(scope="module")
def sweep(tiny_sweep):
    return tiny_sweep


def _completed(sweep_dir):
    return [j for j in job_dirs(sweep_dir) if read_results(j)["status"] == "completed"]


def _inspect(job) -> dict:
    [run_dir] = (job / "wandb").glob("offline-run-*")
    records = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run_dir)],
                             capture_output=True, text=True, timeout=120, check=True).stdout
    summary = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--summary", "--json", str(run_dir)],
                             capture_output=True, text=True, timeout=120, check=True).stdout
    records = [json.loads(line) for line in records.splitlines()]
    [run] = [r["run"] for r in records if r["type"] == "run"]
    return {"run": run, "metrics": [r["metric"] for r in records if r["type"] == "metric"],
            **json.loads(summary)}


def test_runs_of_a_launch_share_its_group_and_are_told_apart(sweep, tmp_path, demo_cache):
    launch = json.loads((sweep / "launch.json").read_text())
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_adhoc_[0-9a-f]{6}", launch["group"])
    assert set(launch["varied"]) == {"seed", "arch.num_kv_heads"}
    names = set()
    for job in _completed(sweep):
        inspected, results = _inspect(job), read_results(job)
        run, seed = inspected["run"], results["seed"]
        assert run["run_group"] == launch["group"] and run["job_type"] == CELL
        assert set(run["tags"]) == {"sweep=adhoc", CELL, f"seed={seed}"}
        names.add(run["display_name"])
        config = inspected["config"]
        assert (config["arch/num_kv_heads"], config["seed"], config["train/iterations"]) == (1, seed, 6)
        assert config["overrides"] == results["overrides"]
    assert names == {f"{CELL} s1", f"{CELL} s2"}  # `<arch>-<ttt>-s<seed>` would name kv=1 and kv=3 alike

    other = tmp_path / "other"
    other.mkdir()
    run_golf(["-m", *FAST_RUN, "arch.num_kv_heads=3", "seed=1"], other, demo_cache)  # another launch, fails fast
    [other_launch] = (other / "multirun").glob("*/launch.json")
    assert json.loads(other_launch.read_text())["group"] != launch["group"]


def test_summary_holds_every_report_column_and_each_family_has_its_step_axis(sweep):
    job = _completed(sweep)[0]
    inspected, results = _inspect(job), read_results(job)
    summary = inspected["summary"]
    assert summary["final/val_bpb"] == results["metrics"]["val_bpb"]
    assert summary["final/headline"] == results["metrics"]["headline"] == "roundtrip"
    assert summary["final/train_s"] == results["timing"]["train_s"]
    assert summary["final/eval_s"] == results["timing"]["eval_s"]
    assert summary["final/n_params"] == results["model"]["n_params"]
    for key in ("bytes_total", "bytes_model", "bytes_code"):
        assert summary[f"final/{key}"] == results["artifact"][key]
    for name, check in results["compliance"]["checks"].items():
        assert summary[f"final/check/{name}"] == check["pass"]
    assert summary["val/bpb"] == results["metrics"]["val_bpb_prequant"]  # the last periodic validation, pre-quant
    assert summary["eval/bpb_roundtrip"] == results["metrics"]["val_bpb"]
    assert {f"snr/{s}/layer_00" for s in SERIES} <= set(summary)
    axes = {m["glob_name"]: m["step_metric"] for m in inspected["metrics"] if m.get("glob_name")}
    assert {f: axes[f"{f}/*"] for f in ("train", "val", "snr", "ttt", "eval")} == {
        f: f"{f}/step" for f in ("train", "val", "snr", "ttt", "eval")}
    snr = results["snr"]["train"]
    assert snr["steps"] == 6 and set(snr["mean"]) == set(SERIES) and results["snr"]["plot"] == "snr_scales.png"
    assert (job / "snr_scales.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _sections(workspace) -> dict:
    return {s.name: s.panels for s in workspace.sections}


def test_the_callbacks_dashboards_validate_with_the_librarys_models(sweep):
    out = sweep / "dashboard"
    group = json.loads((sweep / "launch.json").read_text())["group"]
    view = ws_internal.View.model_validate(json.loads((out / "workspace.json").read_text()))
    workspace = ws.Workspace._from_model(view)
    assert workspace.runset_settings.filters == f"Metric(\"Group\") == '{group}' and Metric(\"JobType\") != 'report'"
    assert [g.name for g in workspace.runset_settings.groupby] == ["arch/num_kv_heads"]
    sections = _sections(workspace)
    bars = sections["Ablation (final, mean ± s.e. per group)"]
    assert [(type(b).__name__, b.metrics[0].name, b.groupby_aggfunc, b.groupby_rangefunc) for b in bars] == [
        ("BarPlot", "final/val_bpb", "mean", "stderr"), ("BarPlot", "final/bytes_total", "mean", "stderr")]
    assert [(p.x.name, p.y[0].name) for p in sections["Training"]] == [
        ("train/step", "train/loss"), ("val/step", "val/bpb"), ("val/step", "val/loss")]
    logged = {k for line in (_completed(sweep)[0] / "metrics.jsonl").read_text().splitlines() for k in json.loads(line)}
    snr_panels = sections["Gradient SNR (training, log steps)"]
    assert len(snr_panels) == len(SERIES)
    assert {y.name for y in snr_panels[0].y} == {k for k in logged if k.startswith("snr/eb/")}

    spec = json.loads((out / "report.json").read_text())
    report = wr.Report._from_model(wr_internal.ReportViewspec.model_validate(spec))
    [table] = [b for b in report.blocks if isinstance(b, wr.MarkdownBlock)]
    bpbs = [read_results(j)["metrics"]["val_bpb"] for j in _completed(sweep)]
    assert f"| `{CELL}` | 2 | roundtrip | {sum(bpbs) / 2:.4f} ± " in table.text
    assert "| `arch.num_kv_heads=3` | 0 (+2 failed) |" in table.text
    grids = [b for b in report.blocks if isinstance(b, wr.PanelGrid)]
    assert {g.runsets[0].filters for g in grids} == {workspace.runset_settings.filters}
    assert grids[0].runsets[0].groupby == ["config.arch/num_kv_heads.value"]
    markdown = (out / "report.md").read_text()
    assert "![ablation chart](report.png)" in markdown and table.text.splitlines()[6] in markdown
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class _FakeWandbServer:
    """The W&B GraphQL API as wandb-workspaces calls it (through wandb.Api()), recording what is saved."""

    app_url = "https://wandb.test"

    def __init__(self):
        self.saved = []

    def execute_graphql(self, query, variables):
        if "ProjectInternalId" in query:
            return {"project": {"id": "UHJvamVjdDox", "internalId": "internal-1"}}
        assert "upsertView" in query, query
        self.saved.append(variables)
        name = variables.get("name") or f"view{len(self.saved)}"
        return {"upsertView": {"inserted": True, "view": {
            "id": f"id{len(self.saved)}", "name": name, "displayName": variables["displayName"],
            "description": variables["description"], "spec": variables["spec"],
            "project": {"name": variables["projectName"], "entityName": variables["entityName"]}}}}


def test_publish_syncs_the_runs_and_saves_both_views(sweep, monkeypatch, capsys):
    import wandb

    server, synced = _FakeWandbServer(), []

    class FakeApi:
        default_entity = "me"

        def __init__(self, *args, **kwargs):
            self._service_api = server

        def projects(self, entity):
            return [SimpleNamespace(name="golf")]

    def fake_sync(command, **kwargs):
        synced.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(wandb, "Api", FakeApi)
    monkeypatch.setattr(subprocess, "run", fake_sync)
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert dashboard_main([str(sweep), "publish"]) == 0
    [command] = synced
    assert command[1:6] == ["-m", "wandb", "sync", "-p", "golf"]
    pieces = [str(p) for job in _completed(sweep) for p in (job / "wandb").glob("offline-run-*")]
    assert sorted(command[6:]) == sorted(pieces) and len(pieces) == 2
    saved_workspace, saved_report = server.saved
    assert (saved_workspace["entityName"], saved_workspace["type"]) == ("me", "project-view")
    assert (saved_report["entityName"], saved_report["type"]) == ("me", "runs")
    workspace = ws.Workspace._from_model(ws_internal.View(
        entity="me", project="golf", display_name="", name="", id="",
        spec=ws_internal.WorkspaceViewspec.model_validate_json(saved_workspace["spec"])))
    offline = ws.Workspace._from_model(ws_internal.View.model_validate(json.loads(
        (sweep / "dashboard" / "workspace.json").read_text())))
    assert workspace.runset_settings.filters == offline.runset_settings.filters
    assert list(_sections(workspace)) == list(_sections(offline))
    blocks = json.loads(saved_report["spec"])["blocks"]
    runsets = [b["metadata"]["runSets"][0] for b in blocks if b["type"] == "panel-grid"]
    assert {(r["project"]["entityName"], r["project"]["name"], r["project"]["id"]) for r in runsets} == {
        ("me", "golf", "internal-1")}
    printed = capsys.readouterr().out
    assert "workspace: https://wandb.test/me/golf?nw=" in printed
    assert "report: https://wandb.test/me/golf/reports/" in printed


def test_publish_without_credentials_is_a_one_line_error(sweep, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("WANDB_API_KEY", "")
    monkeypatch.setenv("NETRC", str(tmp_path / "absent"))
    assert dashboard_main([str(sweep), "publish"]) == 2
    assert capsys.readouterr().err.startswith("error: W&B online (logger.mode=online, golf.dashboard publish) needs")
