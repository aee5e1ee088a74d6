"""Launcher presets of golf/conf/hydra/launcher: every preset composes, submitit_local runs for real.
The SLURM presets submit to a real cluster in tests/test_slurm.py."""

from conftest import job_dirs, read_results
from hydra import compose, initialize

from golf.config.compose import register_schemas
from golf.launcher import usable_cpus  # also registers the ${nproc:} resolver the slurm_cpu preset uses

register_schemas()


def _launcher(*overrides: str):
    with initialize(version_base="1.3", config_path="../golf/conf"):
        return compose("config", overrides=list(overrides), return_hydra_config=True).hydra.launcher


def test_every_preset_composes(monkeypatch):
    monkeypatch.setenv("GOLF_SLURM_PARTITION", "h100")
    monkeypatch.setenv("GOLF_JOBS", "3")
    assert _launcher("hydra/launcher=golf_basic")._target_.endswith("BasicLauncher")
    joblib = _launcher("hydra/launcher=golf_joblib")
    assert joblib._target_.endswith("JoblibLauncher") and joblib.n_jobs == 3
    assert _launcher("hydra/launcher=golf_submitit_local")._target_.endswith("LocalLauncher")
    slurm = _launcher("hydra/launcher=slurm_h100x8")
    assert slurm._target_.endswith("SlurmLauncher")
    placement = (slurm.nodes, slurm.tasks_per_node, slurm.gpus_per_node, slurm.partition, slurm.account)
    assert placement == (1, 1, 8, "h100", None)
    cpu = _launcher("hydra/launcher=slurm_cpu", "launcher.nnodes=2")
    assert cpu._target_ == slurm._target_ and cpu.signal_delay_s == slurm.signal_delay_s == 120
    placement = (cpu.nodes, cpu.tasks_per_node, cpu.gpus_per_node, cpu.cpus_per_task, cpu.partition)
    assert placement == (2, 1, None, usable_cpus(), "h100")
    monkeypatch.setenv("GOLF_SLURM_CPUS", "3")
    assert _launcher("hydra/launcher=slurm_cpu").cpus_per_task == 3


def test_submitit_local_runs_the_sweep_each_job_in_its_own_process(tiny_sweep):
    jobs = [read_results(d) for d in job_dirs(tiny_sweep)]
    assert sorted(r["status"] for r in jobs) == ["completed", "completed", "failed", "failed"]
    assert len(list((tiny_sweep / ".submitit").glob("*/*_result.pkl"))) == 4
    done = [r for r in jobs if r["status"] == "completed"]
    assert sorted(r["seed"] for r in done) == [1, 2] and len({r["env"]["hostname"] for r in done}) == 1
