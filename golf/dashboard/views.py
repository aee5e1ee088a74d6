"""The W&B Workspace and Report of a sweep launch, built with wandb-workspaces (the `dashboard` extra).

Both show the launch's runs only (W&B group = the launch, golf.logging.launch) grouped by the settings the
sweep varies, so each bar and curve is one ablation cell: final/val_bpb and final/bytes_total as mean ± s.e.
bars, training loss and validation curves, per-layer gradient SNR lines (training and TTT) and TTT curves,
each against its own step axis. The Report adds golf.report's ablation table with its significance tests.
Building needs no network; golf.dashboard.publish saves them.
"""

from golf.dashboard.sweep import Sweep
from golf.errors import GolfError
from golf.logging.settings import flat_key
from golf.optim.gradient_snr import SERIES
from golf.report import BAR_TEXT, markdown

GROUPED = {"groupby_aggfunc": "mean", "groupby_rangefunc": "stderr"}  # every panel: group mean ± standard error


def _libraries():
    try:
        import wandb_workspaces.reports.v2 as wr
        import wandb_workspaces.workspaces as ws
        from wandb_workspaces import expr
    except ImportError as exc:
        raise GolfError("W&B dashboards need wandb-workspaces: pip install -e '.[dashboard]'") from exc
    return ws, wr, expr


def config_keys(sweep: Sweep) -> list[str]:
    """The W&B config keys to group by: the varied settings (golf.logging.sinks writes each as a flat key)."""
    return [flat_key(k) for k in sweep.varied]


def panels(sweep: Sweep) -> dict[str, list]:
    """Panel sections by title; a section appears when the runs logged its metrics."""
    _, wr, _ = _libraries()
    keys = sweep.metric_keys

    def lines(title: str, x: str, y: list[str]):
        return wr.LinePlot(title=title, x=x, y=y, **GROUPED)

    def per_layer(prefix: str, x: str, label: str) -> list:
        return [lines(f"{label} {series} per layer", x, [k for k in keys if k.startswith(f"{prefix}/{series}/")])
                for series in SERIES if any(k.startswith(f"{prefix}/{series}/") for k in keys)]

    sections = {
        "Ablation (final, mean ± s.e. per group)": [
            wr.BarPlot(title=metric, metrics=[metric], orientation="v", **GROUPED)
            for metric in ("final/val_bpb", "final/bytes_total")],
        "Training": [lines(key, f"{key.split('/')[0]}/step", [key]) for key in ("train/loss", "val/bpb", "val/loss")
                     if key in keys],
        "Gradient SNR (training, log steps)": per_layer("snr", "snr/step", "SNR"),
        "Test-time training": [lines(key, "ttt/step", [key]) for key in ("ttt/train_loss", "ttt/lr") if key in keys]
        + per_layer("ttt/snr", "ttt/step", "TTT SNR"),
        "EBLS gates": [lines("EBLS gammas", "ebls/step", [k for k in keys if k.startswith("ebls/")])]
        if any(k.startswith("ebls/") for k in keys) else [],
    }
    return {title: section for title, section in sections.items() if section}


def _launch_filter(sweep: Sweep):
    _, _, expr = _libraries()
    # the launch's training runs; golf.report's summary run shares the group and is left out
    return expr.And(expr.Metric("Group") == sweep.group, expr.Metric("JobType") != "report")


def workspace(sweep: Sweep, entity: str, project: str):
    ws, _, expr = _libraries()
    keys = config_keys(sweep)
    groupby = [expr.Config(k) for k in keys] or [expr.Metric("Group")]  # seeds only: one group, its mean ± s.e.
    return ws.Workspace(
        entity=entity, project=project, name=f"golf {sweep.group}",
        runset_settings=ws.RunsetSettings(
            filters=_launch_filter(sweep), groupby=groupby,
            pinned_columns=[*(f"config:{k}.value" for k in keys), "config:seed.value", "summary:final/val_bpb",
                            "summary:final/val_loss", "summary:final/bytes_total", "summary:final/compliant"]),
        sections=[ws.Section(name=title, panels=section, is_open=True) for title, section in panels(sweep).items()])


def description(sweep: Sweep) -> str:
    cells = ", ".join(sweep.varied) or "nothing but the seed"
    return (f"{len(sweep.jobs)} jobs of sweep {sweep.name} (W&B group {sweep.group}), grouped by {cells}; "
            f"baseline group {sweep.baseline}. Record bar: {BAR_TEXT['readme']}.")


def table(sweep: Sweep) -> str:
    return markdown(sweep.rows, sweep.jobs, sweep.baseline, [str(sweep.dir)])


def report(sweep: Sweep, entity: str, project: str, online: bool):
    """Offline the run sets name no project: the library resolves a project to its id over the network."""
    _, wr, _ = _libraries()
    runset = wr.Runset(entity=entity if online else "", project=project if online else "", name=sweep.group,
                       filters=_launch_filter(sweep), groupby=[f"config.{k}" for k in config_keys(sweep)] or ["group"])
    blocks = [wr.P(description(sweep)), wr.H2("Ablation table"), wr.MarkdownBlock(text=table(sweep))]
    for title, section in panels(sweep).items():
        blocks += [wr.H2(title), wr.PanelGrid(runsets=[runset], panels=section)]
    return wr.Report(entity=entity, project=project, title=f"golf ablation: {sweep.name} ({sweep.group})"[:128],
                     description=description(sweep)[:1000], blocks=blocks)


def spec(view) -> dict:
    """The JSON the W&B API stores for a Workspace or Report (what save() uploads)."""
    return view._to_model().model_dump(by_alias=True, exclude_none=True, mode="json")
