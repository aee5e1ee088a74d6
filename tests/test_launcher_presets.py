"""Launcher presets of golf/conf/hydra/launcher: submitit_local runs for real; the SLURM
preset is composed and its sbatch script checked against a fake sbatch (no cluster here)."""

import os
import subprocess
import sys
import time

import pytest
from conftest import job_dirs, read_results
from hydra import compose, initialize

from golf.config.compose import register_schemas

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


def test_submitit_local_runs_the_sweep_each_job_in_its_own_process(tiny_sweep):
    jobs = [read_results(d) for d in job_dirs(tiny_sweep)]
    assert sorted(r["status"] for r in jobs) == ["completed", "completed", "failed", "failed"]
    assert len(list((tiny_sweep / ".submitit").glob("*/*_result.pkl"))) == 4
    done = [r for r in jobs if r["status"] == "completed"]
    assert sorted(r["seed"] for r in done) == [1, 2] and len({r["env"]["hostname"] for r in done}) == 1


@pytest.mark.parametrize("nodes", [1, 2])
def test_slurm_preset_submits_one_task_per_node_eight_gpus(tmp_path, nodes):
    """The real CLI against a fake sbatch/sacct/srun: read the script it submitted, then stop waiting."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text("#!/bin/sh\necho 'Submitted batch job 4242'\n")
    (bin_dir / "sacct").write_text("#!/bin/sh\nprintf 'JobID|State|NodeList\\n4242_0|PENDING|\\n'\n")
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "GOLF_SLURM_PARTITION": "h100",
           "GOLF_SLURM_ACCOUNT": "golfproj", "GOLF_SLURM_TIME_MIN": "25"}
    env.pop("WANDB_MODE")  # the preset keeps the submitter's mode and defaults to offline
    proc = subprocess.Popen([sys.executable, "-m", "golf.train", "-m", "+experiment=baseline", "seed=7",
                             f"launcher.nnodes={nodes}", "hydra/launcher=slurm_h100x8", f"paths.out_root={tmp_path}"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        while not (found := list(tmp_path.glob("multirun/*/.submitit/4242*/*_submission.sh"))):
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()  # before reading stderr: reading a live process's pipe would block forever
                pytest.fail(f"no submission script was written: {proc.communicate()[1][-2000:]}")
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
    script = found[0].read_text()
    for line in (f"#SBATCH --nodes={nodes}", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=8",
                 "#SBATCH --partition=h100", "#SBATCH --account=golfproj", "#SBATCH --time=25", "#SBATCH --exclusive",
                 "#SBATCH --job-name=golf-adhoc", "export WANDB_MODE=offline"):
        assert line in script, script
    assert "-m submitit.core._submit" in script.splitlines()[-1]
    # What runs on the node: golf.train's task function with this job's overrides (pickled by submitit).
    [submitted] = tmp_path.glob("multirun/*/.submitit/4242*/*_submitted.pkl")
    assert b"+experiment=baseline" in submitted.read_bytes() and b"seed=7" in submitted.read_bytes()
