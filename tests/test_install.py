"""golf as a user installs it: a wheel of this tree in a fresh venv, run from a folder outside the repo (so
the configs come from the installed package), with the optional extras (matplotlib, scipy, wandb-workspaces)
made unimportable as in a base install. The venv reuses the installed torch (--system-site-packages), and
the test checks that the golf it imports is the wheel's, not the repo's or an editable install's."""

import os
import shutil
import subprocess
import sys
import time
import zipfile

from conftest import FAST_RUN, REPO, job_dirs, read_results

EXTRAS = ("matplotlib", "scipy", "wandb_workspaces")


def _run(cmd, **kwargs):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_a_wheel_in_a_fresh_venv_trains_cpu_demo_without_the_extras(tmp_path, demo_cache):
    t0 = time.perf_counter()
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the repo
    shutil.copytree(REPO / "golf", source / "golf", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    # the PEP 517 hook pip calls without build isolation, minus pip's start-up
    _run([sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_wheel({str(tmp_path)!r})"],
         cwd=source)
    [wheel] = tmp_path.glob("golf-*.whl")
    assert "golf/conf/experiment/cpu_demo.yaml" in zipfile.ZipFile(wheel).namelist()
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)])
    python = str(venv / "bin" / "python")
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)])  # pip from the system
    no_extras = tmp_path / "no_extras"  # shadows the extras: `import matplotlib` fails as if it were absent
    for name in EXTRAS:
        (no_extras / name).mkdir(parents=True)
        (no_extras / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed')\n")
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(no_extras), GOLF_CACHE=str(demo_cache), PYTHONUNBUFFERED="1")
    where = _run([python, "-c", "import golf; print(golf.__file__)"], cwd=work, env=env).stdout.strip()
    assert where.startswith(str(venv / "lib")), where

    proc = _run([python, "-m", "golf.train", "+experiment=cpu_demo", *FAST_RUN, f"paths.out_root={work}"], cwd=work,
                env=env)
    [job] = job_dirs(work)
    assert read_results(job)["status"] == "completed"
    assert "snr_scales.png skipped: matplotlib is not installed (pip install 'golf[report]')" in proc.stdout
    assert not (job / "snr_scales.png").exists() and read_results(job)["snr"]["train"]["steps"] > 0
    print(f"wheel build + venv + install + cpu_demo job: {time.perf_counter() - t0:.1f}s")
