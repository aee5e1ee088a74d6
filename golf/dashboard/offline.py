"""`<sweep dir>/dashboard/`: the Workspace and Report as the JSON specs W&B stores (workspace.json,
report.json), and report.md, the Report in Markdown (description, golf.report's ablation chart and table,
the panels it holds, each job's snr_scales.png), readable without W&B."""

import re
from pathlib import Path

from golf.ablation_chart import ablation_chart
from golf.dashboard.sweep import Sweep
from golf.dashboard.views import description, panels, report, spec, table, workspace
from golf.errors import GolfError
from golf.logging.jsonio import write_json
from golf.report import chart_title

DASHBOARD_DIR = "dashboard"


def _panel_line(panel) -> str:
    metrics = getattr(panel, "metrics", None) or panel.y
    shown = ", ".join(f"`{m}`" for m in metrics[:4]) + (f" and {len(metrics) - 4} more" if len(metrics) > 4 else "")
    axis = f" vs `{panel.x}`" if getattr(panel, "x", None) else ""
    return f"- {panel.title}: {shown}{axis}"


def report_markdown(sweep: Sweep, chart: Path | None) -> str:
    lines = [f"# golf ablation: {sweep.name} ({sweep.group})", "", description(sweep), ""]
    lines += [f"![ablation chart]({chart.name})", ""] if chart else []
    # golf.report's headings, two levels down, under this document's title
    lines += [re.sub(r"^(#+) ", r"\1## ", line) for line in table(sweep).splitlines()]
    lines += ["", f"## W&B panels (runs of group `{sweep.group}`, grouped by "
                  f"{', '.join(f'`{k}`' for k in sweep.varied) or 'the group'}; mean ± s.e.)", ""]
    for title, section in panels(sweep).items():
        lines += [f"### {title}", "", *map(_panel_line, section), ""]
    plots = [Path(j["job"]) / "snr_scales.png" for j in sweep.jobs]
    lines += ["## Per-run gradient SNR", ""]
    # report.md sits in <sweep dir>/dashboard/, the jobs next to that folder
    links = [f"- [{p.parent.name}](../{p.relative_to(sweep.dir).as_posix()})" for p in plots if p.exists()]
    lines += links or ["- none"]
    lines += ["", f"Publish: `python -m golf.dashboard {sweep.dir} publish` syncs the runs and saves this Workspace "
                  f"and Report to W&B.", ""]
    return "\n".join(lines)


def write_offline(sweep: Sweep) -> Path:
    out = sweep.dir / DASHBOARD_DIR
    out.mkdir(parents=True, exist_ok=True)
    entity = sweep.entity or ""
    write_json(out / "workspace.json", spec(workspace(sweep, entity, sweep.project)))
    write_json(out / "report.json", spec(report(sweep, entity, sweep.project, online=False)))
    chart = out / "report.png"
    try:
        ablation_chart(chart, sweep.rows, sweep.baseline, chart_title(sweep.name, sweep.varied, len(sweep.jobs)))
    except GolfError:  # no matplotlib: the Markdown goes without its chart
        chart = None
    (out / "report.md").write_text(report_markdown(sweep, chart), encoding="utf-8")
    return out
