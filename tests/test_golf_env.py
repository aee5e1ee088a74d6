"""scripts/golf_env.py, behind `make demo` / `make test`: an environment set up before is reused without
installing anything, and a test run that collected no tests fails (CI relies on both). The install paths
need the network and are exercised by a fresh-machine run, not here."""

import importlib.util
import json
import os
import subprocess
import sys

from conftest import REPO

SCRIPT = REPO / "scripts" / "golf_env.py"


def test_an_up_to_date_env_installs_nothing_and_no_tests_is_a_failure(tmp_path):
    spec = importlib.util.spec_from_file_location("golf_env", SCRIPT)
    golf_env = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(golf_env)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    # This interpreter stands in for the venv's (it has torch and golf), refusing installs into it.
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\n[ "$1 $2 $3" = "-m pip install" ] && exit 97\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    (venv / "golf-setup.json").write_text(json.dumps({"fingerprint": golf_env.setup_fingerprint()}))
    proc = subprocess.run([sys.executable, str(SCRIPT), "test", "tests/test_workload.py", "-k", "no_such_test",
                           "-p", "no:cacheprovider"], env={**os.environ, "GOLF_VENV": str(venv)},
                          capture_output=True, text=True, timeout=300)
    assert f"{venv} is up to date (torch " in proc.stdout and "nothing to install" in proc.stdout
    assert "pip install" not in proc.stdout
    assert proc.returncode == 1 and "pytest collected no tests; that is a failure, not a pass" in proc.stderr
