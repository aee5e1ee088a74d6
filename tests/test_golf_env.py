"""scripts/golf_env.py, behind `make demo` / `make test`: an environment set up before is reused without
installing anything, commands run as if it were activated, and a test run that collected no tests fails (CI
relies on all three). The install paths need the network and are exercised by a fresh-machine run, not here."""

import importlib.util
import json
import os
import subprocess
import sys

from conftest import REPO

SCRIPT = REPO / "scripts" / "golf_env.py"


def test_an_up_to_date_env_is_reused_activated_and_no_tests_is_a_failure(tmp_path):
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
    probe = tmp_path / "test_probe.py"  # what a test sees: `python` by name is the venv's (a record's README runs it)
    probe.write_text(f"import os, shutil\n\ndef test_activated():\n"
                     f"    assert shutil.which('python') == {str(python)!r}\n"
                     f"    assert os.environ['VIRTUAL_ENV'] == {str(venv)!r}\n")

    def golf_env_test(*args):
        return subprocess.run([sys.executable, str(SCRIPT), "test", str(probe), "-p", "no:cacheprovider", *args],
                              env={**os.environ, "GOLF_VENV": str(venv)}, capture_output=True, text=True, timeout=300)

    proc = golf_env_test()
    assert f"{venv} is up to date (torch " in proc.stdout and "nothing to install" in proc.stdout
    assert "pip install" not in proc.stdout
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout + proc.stderr
    proc = golf_env_test("-k", "no_such_test")
    assert proc.returncode == 1 and "pytest collected no tests; that is a failure, not a pass" in proc.stderr
