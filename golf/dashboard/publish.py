"""`python -m golf.dashboard <sweep dir> publish`: sync the launch's offline runs to W&B (`wandb sync`; a
resumed job's several offline dirs go to its one run, in order), then save its Workspace and Report and
return their URLs. Needs credentials (WANDB_API_KEY or `wandb login`) and the network."""

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from golf.dashboard.sweep import Sweep
from golf.dashboard.views import report, workspace
from golf.errors import GolfError
from golf.logging.sinks import check_wandb_credentials


def offline_runs(sweep: Sweep) -> list[Path]:
    """Every offline run dir of the jobs; their names start with the run's start time, so sorted is in order."""
    return sorted(d for job in sweep.jobs for d in (Path(job["job"]) / "wandb").glob("offline-run-*"))


def sync(run_dirs: list[Path], entity: str | None, project: str) -> None:
    command = [sys.executable, "-m", "wandb", "sync", "-p", project, *(["-e", entity] if entity else []),
               *map(str, run_dirs)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise GolfError(f"wandb sync of {len(run_dirs)} runs failed ({tail[0]}); check the network and `wandb login`")


def publish(sweep: Sweep, entity: str | None = None, project: str | None = None) -> dict[str, str]:
    check_wandb_credentials(SimpleNamespace(name="wandb", mode="online"))
    import wandb

    project = project or sweep.project
    entity = entity or sweep.entity
    runs = offline_runs(sweep)
    if runs:
        sync(runs, entity, project)
    try:
        entity = entity or wandb.Api().default_entity
        saved_workspace = workspace(sweep, entity, project).save()
        saved_report = report(sweep, entity, project, online=True).save()
        return {"workspace": saved_workspace.url, "report": saved_report.url}
    except GolfError:
        raise
    except Exception as exc:  # no network, a rejected key, an unknown entity: all surface here
        raise GolfError(f"cannot save the dashboards to W&B {entity}/{project} ({type(exc).__name__}: {exc}); "
                        f"check the network and `wandb login`") from exc
