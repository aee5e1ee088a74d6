"""Multi-node jobs: each node runs golf.train, node 0 owns the job dir, and every node's torchrun joins
one c10d rendezvous. Two "nodes" on this machine (two golf.train processes, one gloo rank each) form
one world of 2 and produce one job whose ranks agree."""

import os
import subprocess
import sys

import pytest
from conftest import FAST_RUN, free_port, read_results

from golf.config.job import LauncherConfig, LauncherName
from golf.errors import ConfigError
from golf.launcher import Placement, placement, torchrun_command


def test_torchrun_command_single_and_multi_node(monkeypatch, tmp_path):
    cfg = LauncherConfig(name=LauncherName.torchrun, nproc=8)
    single = torchrun_command(cfg, tmp_path, placement(cfg))
    assert "--standalone" in single and "--nproc_per_node=8" in single and single[-2:] == ["golf.worker", str(tmp_path)]
    cfg.nnodes = 4
    monkeypatch.setenv("SLURM_NODEID", "3")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("GOLF_RDZV_HOST", "gpu-node-17")
    where = placement(cfg)
    assert where == Placement(3, 4, "gpu-node-17", "4242")
    multi = torchrun_command(cfg, tmp_path, where)
    assert "--standalone" not in multi
    for arg in ("--nnodes=4", "--rdzv-backend=c10d", "--rdzv-endpoint=gpu-node-17:29500", "--rdzv-id=4242"):
        assert arg in multi, multi


def test_multi_node_outside_slurm_without_placement_is_a_clear_error(monkeypatch):
    for var in ("SLURM_NODEID", "GOLF_NODE_RANK", "GOLF_RDZV_HOST", "SLURM_JOB_NODELIST"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="GOLF_NODE_RANK and GOLF_RDZV_HOST"):
        placement(LauncherConfig(name=LauncherName.torchrun, nproc=8, nnodes=2))


def test_two_nodes_form_one_world_and_one_job(tmp_path, demo_cache):
    job_dir = tmp_path / "job"
    port = free_port()
    args = [*FAST_RUN, "launcher=torchrun", "launcher.nproc=1", "launcher.nnodes=2", f"launcher.rdzv_port={port}",
            f"hydra.run.dir={job_dir}", f"paths.out_root={tmp_path}"]
    nodes = []
    for rank in (1, 0):  # the non-zero node first: it must wait in the rendezvous for node 0
        env = {**os.environ, "GOLF_CACHE": str(demo_cache), "GOLF_NODE_RANK": str(rank),
               "GOLF_RDZV_HOST": "127.0.0.1", "SLURM_JOB_ID": "golf-test", "PYTHONUNBUFFERED": "1"}
        nodes.append(subprocess.Popen([sys.executable, "-m", "golf.train", *args], cwd=tmp_path, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], [err[-3000:] for _, err in outputs]
    assert "node 1/2: ranks finished" in outputs[0][0] + outputs[0][1]
    results = read_results(job_dir)
    assert results["status"] == "completed"
    assert [r["rank"] for r in results["ranks"]] == [0, 1]
    assert results["ranks"][0]["val_bpb"] == results["ranks"][1]["val_bpb"]
