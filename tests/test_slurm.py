"""Sweeps on a real SLURM cluster: scripts/slurm_local.sh starts slurmctld, two slurmd "nodes", slurmdbd and
MariaDB on this machine, and golf's slurm_cpu preset (slurm_h100x8 without GPUs) submits through sbatch as
a user's sweep would. Skipped, with the way to get it, where the cluster cannot start (not root, packages
missing)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FAST_RUN, REPO, free_port, job_dirs, read_results

from golf.launcher import usable_cpus

SCRIPT = REPO / "scripts" / "slurm_local.sh"
NOT_HERE = 3  # slurm_local.sh's exit status when this machine cannot host the cluster

# One intra-op thread: two "nodes" share this machine's cores, and results must not depend on the node.
TINY = [*FAST_RUN, "train.threads=1", "hydra/launcher=slurm_cpu"]
# Long enough to be signalled mid-training, without validation passes.
LONGER = {"train.iterations": "40", "train.warmdown_iters": "10", "train.val_every": "0", "train.log_every": "1"}
LONG = [a for a in TINY if a.split("=")[0] not in LONGER] + [f"{k}={v}" for k, v in LONGER.items()]

pytestmark = pytest.mark.usefixtures("slurm_cluster")  # first, so a skip comes before any other setup


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running two-node local cluster; stopped again at the end if this fixture started it."""
    if sys.platform != "linux":
        pytest.skip("a local SLURM cluster needs Linux (scripts/slurm_local.sh)")
    status = subprocess.run([SCRIPT, "status"], capture_output=True, text=True)
    was_running = "slurmctld: running" in status.stdout
    start = subprocess.run([SCRIPT, "start", "--nodes", "2"], capture_output=True, text=True, timeout=300)
    if start.returncode == NOT_HERE:
        pytest.skip(f"no local SLURM cluster ({start.stderr.strip()}); CI runs `scripts/slurm_local.sh install` "
                    f"and these tests as root")
    assert start.returncode == 0, start.stdout + start.stderr
    yield
    if not was_running:
        subprocess.run([SCRIPT, "stop"], capture_output=True, timeout=120)


@pytest.fixture
def sweep_name(request, slurm_cluster):
    """This test's sweep name (SLURM job name golf-<name>); its jobs are cancelled when the test ends."""
    name = request.node.name.removeprefix("test_")[:40]
    yield name
    subprocess.run(["scancel", f"--name=golf-{name}"], capture_output=True)


def _sweep(out: Path, cache: Path, args: list[str]) -> subprocess.Popen:
    """Start a sweep in the background; its console goes to out/sweep.log."""
    env = {**os.environ, "GOLF_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    with open(out / "sweep.log", "w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "golf.train", "-m", *args, f"paths.out_root={out}"], cwd=out,
                                env=env, stdout=log, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen, out: Path, why: str):
    proc.kill()
    proc.wait()
    pytest.fail(f"{why}: {(out / 'sweep.log').read_text()[-3000:]}")


def _finish(proc: subprocess.Popen, out: Path, timeout: int) -> str:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc, out, f"the sweep did not return within {timeout} s")
    return (out / "sweep.log").read_text()


def _sweep_dir(out: Path) -> Path:
    [sweep_dir] = (out / "multirun").iterdir()
    return sweep_dir


def _slurm_job_id(sweep_dir: Path) -> str:
    """The sweep's SLURM job id: an array's (its tasks' folders are <id>_<task>), or a single job's."""
    [job_id] = [p.name for p in (sweep_dir / ".submitit").iterdir() if p.name.isdigit()]
    return job_id


def _slurm_env(job_dir: Path) -> dict:
    return json.loads((job_dir / "env.json").read_text())["env"]


def _array_task(job_dir: Path) -> str:
    """The job's SLURM array task as scancel and sacct name it, from what golf recorded in env.json."""
    env = _slurm_env(job_dir)
    return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"


def _training_step(sweep_dir: Path, job: str) -> int:
    """The last step job `job` (its dir's name prefix, e.g. "0_") logged, 0 before training."""
    steps = [json.loads(line)["step"] for path in sweep_dir.glob(f"{job}*/metrics.jsonl")
             for line in path.read_text().splitlines() if '"train/loss"' in line]
    return max(steps, default=0)


def _wait_for_step(proc: subprocess.Popen, out: Path, job: str, step: int) -> None:
    deadline = time.time() + 180
    while not ((out / "multirun").is_dir() and _training_step(_sweep_dir(out), job) >= step):
        if proc.poll() is not None or time.time() > deadline:
            _stop(proc, out, f"job {job} never reached step {step}")
        time.sleep(0.2)


def _sacct(job: str, *fields: str, history: bool = False) -> list[list[str]]:
    """sacct rows of `job` (accounting reaches the database a few seconds after the event)."""
    cmd = ["sacct", "-n", "-P", "-X", "-j", job, "-o", ",".join(fields), *(["-D"] if history else [])]
    return [row.split("|") for row in subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()]


def _sacct_until(job: str, fields: tuple[str, ...], wanted, history: bool = False) -> list[list[str]]:
    deadline = time.time() + 30
    while not wanted(rows := _sacct(job, *fields, history=history)) and time.time() < deadline:
        time.sleep(0.5)
    return rows


def test_seeds_sweep_runs_as_a_slurm_array_and_reports(tmp_path, demo_cache, sweep_name, monkeypatch):
    monkeypatch.setenv("GOLF_SLURM_PARTITION", "cpu")
    monkeypatch.setenv("GOLF_SLURM_ACCOUNT", "golfproj")
    monkeypatch.setenv("GOLF_SLURM_TIME_MIN", "20")
    proc = _sweep(tmp_path, demo_cache, [*TINY, "seed=1,2", f"sweep_name={sweep_name}"])
    output = _finish(proc, tmp_path, 180)
    assert proc.returncode == 0, output[-3000:]
    sweep_dir = _sweep_dir(tmp_path)
    array = _slurm_job_id(sweep_dir)
    script = (sweep_dir / ".submitit" / array / f"{array}_submission.sh").read_text()
    for line in (f"#SBATCH --cpus-per-task={usable_cpus()}", "#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=1",
                 "#SBATCH --partition=cpu", "#SBATCH --account=golfproj", "#SBATCH --time=20", "#SBATCH --exclusive",
                 f"#SBATCH --job-name=golf-{sweep_name}", "#SBATCH --signal=USR2@120", "export WANDB_MODE=disabled"):
        assert line in script, script
    assert "gpu" not in script and "gres" not in script, script  # a CPU cluster rejects any GPU request

    jobs = [read_results(d) for d in job_dirs(tmp_path)]
    assert [(r["status"], r["seed"]) for r in jobs] == [("completed", 1), ("completed", 2)]
    assert [_array_task(d) for d in job_dirs(tmp_path)] == [f"{array}_0", f"{array}_1"]
    tasks = [[f"{array}_0", "COMPLETED"], [f"{array}_1", "COMPLETED"]]
    assert _sacct_until(array, ("JobID", "State"), lambda rows: rows == tasks) == tasks

    report = subprocess.run([sys.executable, "-m", "golf.report", str(sweep_dir)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-3000:]
    table = (sweep_dir / "report" / "jobs.csv").read_text().splitlines()
    assert len(table) == 3 and all(",completed," in row for row in table[1:]), table
    md = (sweep_dir / "report" / "report.md").read_text()
    assert "2 jobs" in md and all(f"{r['metrics']['val_bpb']:.6f}" in md for r in jobs), md


def test_preempted_job_checkpoints_requeues_and_matches_an_uninterrupted_run(tmp_path, demo_cache, sweep_name):
    """USR2 (what SLURM sends before a preemption or the time limit) to job 0 mid-training: golf checkpoints,
    submitit requeues, the requeued job resumes; job 1 is the same training run, never interrupted."""
    proc = _sweep(tmp_path, demo_cache, [*LONG, "train.deterministic=true", "resume=auto", f"sweep_name={sweep_name}",
                                         "run_name=preempted,uninterrupted"])
    _wait_for_step(proc, tmp_path, "0_", 10)
    sweep_dir = _sweep_dir(tmp_path)
    task = _array_task(sweep_dir / "0_preempted")
    subprocess.run(["scancel", "--signal=USR2", task], check=True)  # the steps only: USR2 would end the batch shell
    output = _finish(proc, tmp_path, 300)
    assert proc.returncode == 0, output[-3000:]

    preempted, uninterrupted = (read_results(sweep_dir / name) for name in ("0_preempted", "1_uninterrupted"))
    assert preempted["status"] == uninterrupted["status"] == "completed"
    step = preempted["resumed"]["from_step"]
    assert 10 <= step < 40 and uninterrupted.get("resumed") is None
    assert _slurm_env(sweep_dir / "0_preempted")["SLURM_RESTART_COUNT"] == "1"
    assert "SLURM_RESTART_COUNT" not in _slurm_env(sweep_dir / "1_uninterrupted")
    log = "".join(p.read_text() for p in (sweep_dir / ".submitit" / task).glob("*_log.out"))
    for event in ("received SIGUSR2", f"checkpoint: step {step} ->", f"Requeued job {task}",
                  f"resumed from {sweep_dir / '0_preempted' / 'ckpt' / 'last.pt'}: step {step}"):
        assert event in log, log[-3000:]
    history = _sacct_until(task, ("JobID", "State"), lambda r: [s for _, s in r] == ["REQUEUED", "COMPLETED"],
                           history=True)
    assert [state for _, state in history] == ["REQUEUED", "COMPLETED"]
    # Bit for bit: the same weights (artifact bytes) and the same scores as the run that was never stopped.
    for key in ("val_bpb", "val_loss", "val_bpb_prequant", "train_loss_final"):
        assert preempted["metrics"][key] == uninterrupted["metrics"][key], key
    assert preempted["artifact"]["sha256"] == uninterrupted["artifact"]["sha256"]


def _sigkill_task_process(task: str) -> None:
    """SIGKILL the Python process of an array task, as the kernel's OOM killer would: no handler runs, and no
    result file is written, so only SLURM's accounting can tell the sweep that the job is gone."""
    raw_id, node = subprocess.run(["squeue", "-h", "-j", task, "-o", "%A %N"], capture_output=True, text=True,
                                  check=True).stdout.split()
    pids = subprocess.run(["scontrol", "listpids", raw_id, node], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in pids.splitlines()[1:]]  # PID JOBID STEPID LOCALID GLOBALID
    [pid] = [int(row[0]) for row in rows if row[2] == "0" and row[4] == "0"]  # step 0 (srun), task 0
    assert "submitit.core._submit" in Path(f"/proc/{pid}/cmdline").read_text()
    os.kill(pid, signal.SIGKILL)


def test_a_killed_array_task_is_reported_failed_not_waited_on(tmp_path, demo_cache, sweep_name):
    proc = _sweep(tmp_path, demo_cache, [*LONG, "seed=1,2", f"sweep_name={sweep_name}"])
    _wait_for_step(proc, tmp_path, "1_", 1)
    [job_dir] = _sweep_dir(tmp_path).glob("1_*")
    task = _array_task(job_dir)
    _sigkill_task_process(task)
    output = _finish(proc, tmp_path, 150)  # without sacct (slurmdbd) submitit would wait here forever
    assert proc.returncode != 0
    assert f"Job {task} (task: 0)" in output and "has not produced any output (state: FAILED)" in output, output[-3000:]
    assert [read_results(d)["status"] for d in job_dirs(tmp_path)] == ["completed", "running"]
    assert _sacct_until(task, ("State",), lambda r: r == [["FAILED"]]) == [["FAILED"]]


def test_two_nodes_form_one_world_in_one_slurm_job(tmp_path, demo_cache, sweep_name):
    proc = _sweep(tmp_path, demo_cache, [*TINY, "launcher=torchrun", "launcher.nproc=1", "launcher.nnodes=2",
                                         f"launcher.rdzv_port={free_port()}", f"sweep_name={sweep_name}"])
    output = _finish(proc, tmp_path, 180)
    assert proc.returncode == 0, output[-3000:]
    [job_dir] = job_dirs(tmp_path)
    results = read_results(job_dir)
    assert results["status"] == "completed"
    assert [r["rank"] for r in results["ranks"]] == [0, 1]
    assert results["ranks"][0]["val_bpb"] == results["ranks"][1]["val_bpb"] == results["metrics"]["val_bpb"]
    env = _slurm_env(job_dir)
    assert env["SLURM_NNODES"] == "2"
    job_id = _slurm_job_id(_sweep_dir(tmp_path))
    assert job_id == env["SLURM_JOB_ID"]  # one job, not an array
    submitted = _sweep_dir(tmp_path) / ".submitit" / job_id
    node0, node1 = ((submitted / f"{job_id}_{node}_log.out").read_text() for node in (0, 1))
    assert "--rdzv-endpoint=golf-n1:" in node0 and "--rdzv-endpoint=golf-n1:" in node1
    assert "node 1/2: ranks finished; node 0 reports the job" in node1 and "golf | val_bpb" in node0
    rows = _sacct_until(job_id, ("NNodes", "NodeList", "State"), lambda r: r and r[0][2] == "COMPLETED")
    assert rows == [["2", "golf-n[1-2]", "COMPLETED"]]
