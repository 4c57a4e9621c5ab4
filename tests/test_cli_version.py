"""`deepswap --version` prints the installed package's version, from the real command in a subprocess."""

import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import deepswap


def _deepswap_command() -> str:
    beside = Path(sys.executable).with_name("deepswap")
    found = str(beside) if beside.exists() else shutil.which("deepswap")
    assert found, "the deepswap command is not installed"
    return found


def test_version_prints_the_installed_version() -> None:
    run = subprocess.run([_deepswap_command(), "--version"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"deepswap {version('deepswap')}\n"
    assert version("deepswap") == deepswap.__version__
