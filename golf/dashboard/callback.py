"""golf's Hydra callback (golf/conf/config.yaml `hydra.callbacks`), for multiruns.

At the start it writes the launch's launch.json (golf.logging.launch): the W&B group its jobs share and the
keys it sweeps. At the end it builds the launch's dashboards offline (golf.dashboard.offline) and, with
logger.mode=online, saves them to W&B. Hydra skips `on_multirun_end` when a job failed, so the build also
runs at exit. A dashboard is a bonus: failing to build one logs a line, never fails the sweep.
"""

import atexit
import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from golf.errors import GolfError
from golf.logging.jsonio import read_json
from golf.logging.launch import new_launch, write_launch
from golf.logging.results import RESULTS_FILE
from golf.logging.settings import swept_keys

log = logging.getLogger(__name__)


def launch_dirs(sweep_dir: Path, out_root: Path) -> list[Path]:
    """The launch dirs holding this sweep's jobs: the sweep dir, or, for a `resume=auto` re-run whose jobs
    continued where they first ran, those first launches' dirs."""
    if any(sweep_dir.glob(f"*/{RESULTS_FILE}")):
        return [sweep_dir]
    found = {path.parent.parent for path in out_root.glob(f"multirun/*/*/{RESULTS_FILE}")
             if (read_json(path).get("sweep") or {}).get("dir") == str(sweep_dir.resolve())}
    return sorted(found)


class DashboardCallback(Callback):
    def __init__(self):
        self.config: DictConfig | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        params = config.hydra.sweeper.params  # a sweep bundle's axes; None without one
        params = OmegaConf.to_container(params) if params else {}
        varied = swept_keys([f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task))
        write_launch(sweep_dir, new_launch(config.sweep_name, varied, sweep_dir))
        self.config = config
        atexit.register(self.build)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        self.build()

    def build(self) -> None:
        config, self.config = self.config, None  # once: at the end of the sweep, or at exit after a failed job
        if config is None or config.logger.name != "wandb" or config.logger.mode == "disabled":
            return
        from golf.dashboard.offline import write_offline
        from golf.dashboard.publish import publish
        from golf.dashboard.sweep import load_sweep

        for launch_dir in launch_dirs(Path(config.hydra.sweep.dir), Path(config.paths.out_root)):
            try:
                sweep = load_sweep(launch_dir)
                log.info(f"dashboard: {write_offline(sweep)}/report.md (W&B group {sweep.group})")
                if config.logger.mode == "online":
                    for view, url in publish(sweep).items():
                        log.info(f"dashboard: W&B {view} {url}")
            except GolfError as exc:
                log.warning(f"dashboard not built for {launch_dir}: {exc}")
            except Exception:  # a bug, with its traceback; the sweep's own outcome stands
                log.exception(f"dashboard not built for {launch_dir}")
