"""Set up golf's environment on first use, then run the demo or the tests in it.

    python3 scripts/golf_env.py demo [overrides...]     # what `make demo` runs
    python3 scripts/golf_env.py test [pytest args...]   # what `make test` runs
    python3 scripts/golf_env.py setup                   # only the environment

The environment is a virtualenv at $GOLF_VENV, by default `.venv/` in the repository. It is created on
first use and reused after that; packages are installed again only when pyproject.toml (or the
checkout) changed since the last successful setup, which `<venv>/golf-setup.json` records.

torch, the one dependency whose right build depends on the machine:
- the interpreter running this script already has torch >= 2.4 (a GPU machine's CUDA build, a conda
  env): the venv is created with --system-site-packages and uses that torch as it is;
- otherwise, with an NVIDIA driver (nvidia-smi): torch==2.13.0 from the package index (the CUDA build);
- otherwise, on Linux, a CPU build: `pip install torch==2.13.0` when the configured package sources
  already offer 2.13.0+cpu (a local wheel or mirror, as on CI), else from the PyTorch CPU index
  (the same version on PyPI is the CUDA build, several GB); on macOS and Windows PyPI's build is the CPU one.

Standard library only, so that a bare Python 3.10+ runs it (and an older one gets a one-line error).
"""

from __future__ import annotations  # the annotations below must not stop Python < 3.10 before the version check

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import urllib.request
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TORCH_PIN = "torch==2.13.0"
TORCH_MIN = (2, 4)  # pyproject.toml: torch>=2.4
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
COMMANDS = {
    "demo": ["-m", "golf.train", "+experiment=cpu_demo"],
    "test": ["-m", "pytest", "-q"],
    "setup": None,
}
PYTEST_NO_TESTS = 5


def say(message: str) -> None:
    print(f"[golf setup] {message}", flush=True)


def fail(message: str) -> None:
    print(f"[golf setup] error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def version_tuple(version: str) -> tuple[int, int]:
    major, minor = version.split("+")[0].split(".")[:2]
    return int(major), int(minor)


def running_torch() -> str | None:
    """The torch version this interpreter can import (without importing it), or None."""
    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None
    return version if version_tuple(version) >= TORCH_MIN else None


def venv_torch(python: Path) -> str | None:
    probe = "import importlib.metadata as m; print(m.version('torch'))"
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def setup_fingerprint() -> str:
    """Changes when what `pip install -e .[dev]` would install changes: the dependencies or the checkout's place."""
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes())
    digest.update(str(REPO).encode())
    return digest.hexdigest()


def run(cmd: list[str]) -> None:
    """Run an install command, showing what it installs but not the packages it finds already there."""
    print("+ " + " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if not line.startswith("Requirement already satisfied"):
            print(line, end="", flush=True)
    if proc.wait() != 0:
        fail(f"`{' '.join(cmd)}` exited with code {proc.returncode}; its output is above")


def create_venv(venv: Path) -> None:
    machine_torch = running_torch()
    where = f"{sys.executable} (Python {platform.python_version()})"
    if machine_torch:
        say(f"creating {venv} from {where} with --system-site-packages, to use its torch {machine_torch}")
    else:
        say(f"creating {venv} from {where}")
    cmd = [sys.executable, "-m", "venv", *(["--system-site-packages"] if machine_torch else []), str(venv)]
    if subprocess.run(cmd).returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        fail(f"`{' '.join(cmd)}` failed; on Debian or Ubuntu install the venv module first "
             f"(apt-get install python3-venv), or point GOLF_VENV at an existing virtualenv")


def offers_cpu_build(python: Path) -> bool:
    """Whether the configured package sources (pip.conf, PIP_* variables) already offer the CPU build."""
    out = subprocess.run([str(python), "-m", "pip", "index", "versions", "torch"], capture_output=True, text=True)
    wanted = TORCH_PIN.split("==")[1] + "+cpu"
    return out.returncode == 0 and any(wanted in line.replace(",", " ").split() for line in out.stdout.splitlines())


def reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=15):
            return True
    except OSError:
        return False


def install_torch(python: Path) -> None:
    pip = [str(python), "-m", "pip", "install"]
    if shutil.which("nvidia-smi"):
        say(f"NVIDIA driver found: installing {TORCH_PIN}, the CUDA build")
        run([*pip, TORCH_PIN])
    elif sys.platform != "linux":
        say(f"no NVIDIA driver: installing {TORCH_PIN} (the package index's build for {sys.platform} is the CPU one)")
        run([*pip, TORCH_PIN])
    elif offers_cpu_build(python):
        say(f"no NVIDIA driver: installing {TORCH_PIN}, the CPU build your package sources offer")
        run([*pip, TORCH_PIN])
    elif reachable(CPU_INDEX + "/torch/"):
        say(f"no NVIDIA driver: installing {TORCH_PIN}, the CPU build from {CPU_INDEX}")
        run([*pip, TORCH_PIN, "--extra-index-url", CPU_INDEX])
    else:
        say(f"no NVIDIA driver, but {CPU_INDEX} is not reachable: installing {TORCH_PIN} from the package "
            f"index, which on Linux is the CUDA build (several GB); it runs on the CPU all the same")
        run([*pip, TORCH_PIN])


def ensure_env() -> Path:
    if sys.version_info < (3, 10):
        fail(f"golf needs Python 3.10 or newer; {sys.executable} is {platform.python_version()}")
    venv = Path(os.environ.get("GOLF_VENV") or REPO / ".venv").absolute()
    python = venv_python(venv)
    stamp_path = venv / "golf-setup.json"
    if not python.exists():
        create_venv(venv)
    elif stamp_path.is_file() and json.loads(stamp_path.read_text())["fingerprint"] == setup_fingerprint():
        say(f"{venv} is up to date (torch {venv_torch(python)}, golf from {REPO}); nothing to install")
        return python
    else:
        say(f"reusing {venv}; installing what pyproject.toml asks for")
    torch = venv_torch(python)
    if torch and version_tuple(torch) >= TORCH_MIN:
        say(f"torch {torch} is there already: kept")
    else:
        install_torch(python)
    run([str(python), "-m", "pip", "install", "-e", f"{REPO}[dev]"])
    stamp_path.write_text(json.dumps({"fingerprint": setup_fingerprint(), "torch": venv_torch(python)}) + "\n")
    say(f"ready: {venv} (torch {venv_torch(python)}, golf from {REPO})")
    return python


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        got = " ".join(argv) or "nothing"
        fail(f"usage: python3 scripts/golf_env.py {'|'.join(COMMANDS)} [args...]; got {got}")
    python = ensure_env()
    command = COMMANDS[argv[0]]
    if command is None:
        return 0
    cmd = [str(python), *command, *argv[1:]]
    print("+ " + " ".join(cmd), flush=True)
    # As if activated: commands the run starts by name (`python train_gpt.py` in a record's README,
    # `wandb`) are the venv's too.
    activated = {**os.environ, "VIRTUAL_ENV": str(python.parent.parent),
                 "PATH": os.pathsep.join([str(python.parent), os.environ.get("PATH", "")])}
    code = subprocess.run(cmd, cwd=REPO, env=activated).returncode
    if argv[0] == "test" and code == PYTEST_NO_TESTS:
        fail("pytest collected no tests; that is a failure, not a pass")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
