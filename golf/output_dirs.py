"""Where a launch writes: run and sweep dirs that never collide and never leave their folder.

    runs/<time>_<run_name>_<overrides id>-<launch id>/           python -m golf.train ...
    multirun/<time>_<sweep_name>_<overrides id>-<launch id>/<job num>_<run_name>/    ... -m ...

The overrides id is a short hash of the command's overrides (without `resume`), so two launches that differ
in any key (an lr) never share a dir, and the dirs of one command are easy to spot; the launch id is random
per launch, so the same command started twice in the same second gets two dirs. Both are resolved once, in the
process that launches (OmegaConf caches them, and Hydra hands that cache to every job of a sweep, SLURM's
included): a SLURM requeue, which re-runs the pickled job, re-enters its own dir. The launch id also sits in
`hydra.callbacks.golf_output_dir.launch_id`, where the job reads it (golf.resume tells a requeue, the same
launch again, from a new launch into a dir that already holds a job).

Names from the command line (`run_name`, `sweep_name`) become one path component: `golf_dirname` replaces
path separators in the dir name, and `CheckOutputDir` refuses such a name before Hydra creates anything.
`CheckOutputDir` is a Hydra callback because Hydra creates the run dir (and writes .hydra/ into it) before
golf's code runs: that is too late to refuse an unwritable `paths.out_root` with one line, or a `hydra.run.dir`
that holds another job. Hydra turns a callback's exceptions into warnings, so it exits itself (one line on
stderr, exit status 2).
"""

import secrets
import sys
import tempfile
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from golf.errors import ConfigError, GolfError
from golf.resume import check_existing_job, check_existing_sweep, job_key, overrides_sha256, run_resume_command

CALLBACK = "golf_output_dir"


def plain_name(value: str, what: str) -> str:
    """`value` if it is usable as one file or folder name, else a ConfigError naming `what` (the option)."""
    if not value or value in (".", "..") or dir_name(value) != value:
        raise ConfigError(f"{what}={value!r} is not a plain name: it becomes a file or folder name, so it cannot "
                          f"be empty, '.' or '..', or hold '/', '\\' or control characters; pick another")
    return value


def dir_name(value: str) -> str:
    """`value` as one path component: separators and control characters become '_', '.' and '..' become '_'."""
    name = "".join("_" if c in "/\\" or ord(c) < 32 else c for c in str(value))
    return "_" if name in ("", ".", "..") else name


def overrides_id(overrides) -> str:
    return overrides_sha256(overrides)[:6]


def new_launch_id() -> str:
    return secrets.token_hex(3)


# Cached: resolved once per launch and handed to every job with the config (see the module docstring).
OmegaConf.register_new_resolver("golf_launch_id", new_launch_id, use_cache=True, replace=True)
OmegaConf.register_new_resolver("golf_overrides_id", overrides_id, use_cache=True, replace=True)
OmegaConf.register_new_resolver("golf_dirname", dir_name, replace=True)


def launch_id() -> str:
    """This launch's id, inside a job (the value the launching process resolved)."""
    return str(HydraConfig.get().callbacks[CALLBACK].launch_id)


def check_writable(folder: Path) -> None:
    """Create `folder` and a file in it, or a ConfigError naming it (a permission or mode check is not enough:
    root passes them on a read-only filesystem)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot write job dirs under {folder} ({exc.strerror or exc}); set paths.out_root (or "
                          f"GOLF_OUT) to a writable folder") from None


class CheckOutputDir(Callback):
    """Checks run before Hydra creates the run or sweep dir (see the module docstring)."""

    def __init__(self, launch_id: str):
        self.launch_id = launch_id

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        try:
            HydraConfig.instance().set_config(config)  # the names interpolate ${hydra:...}
            plain_name(str(config.run_name), "run_name")
            plain_name(str(config.sweep_name), "sweep_name")
            check_writable(Path(str(config.paths.out_root)))
            overrides = list(config.hydra.overrides.task)
            run_dir = Path(str(config.hydra.run.dir))
            check_existing_job(run_dir, str(config.resume.mode), job_key(overrides, multirun=False), self.launch_id,
                               run_resume_command(overrides, run_dir))
        except GolfError as exc:
            _refuse(exc)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            HydraConfig.instance().set_config(config)
            plain_name(str(config.sweep_name), "sweep_name")  # run_name may be swept: each job checks its own
            check_writable(Path(str(config.paths.out_root)))
            check_existing_sweep(Path(str(config.hydra.sweep.dir)), str(config.resume.mode))
        except GolfError as exc:
            _refuse(exc)


def _refuse(exc: GolfError):
    print(f"error: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(2)
