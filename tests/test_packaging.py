"""The install and the CLI surface: what a fresh user meets first."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from edgeirst.weights import shipped_model

REPO = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ["zoo", "data", "train", "eval", "export", "prune", "quantize", "run", "demo", "bench", "deploy"]


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text)


def test_ci_runs_the_readme_test_command_verbatim():
    commands = _readme_commands()
    assert len(commands) >= 2, "README quick start needs the main command and the test command"
    main, tests = commands[0], commands[1]
    assert "edgeirst demo" in main
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert tests in ci, f"the README test command {tests!r} is not a line of .ci/run"
    assert any(line.startswith("python -m pip install") and "torch==2.13.0" in line for line in ci)


def test_help_lists_every_subcommand_without_importing_torch():
    code = ("import sys, runpy; sys.argv = ['edgeirst', '--help']\n"
            "try:\n    runpy.run_module('edgeirst', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NOTORCH')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for name in SUBCOMMANDS:
        assert re.search(rf"^\s+{name}\s", r.stdout, re.M), f"{name} missing from --help"
    assert r.stdout.strip().endswith("NOTORCH")


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_help(name):
    r = subprocess.run([sys.executable, "-m", "edgeirst", name, "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Usage:" in r.stdout


def test_version():
    from edgeirst import __version__

    r = subprocess.run([sys.executable, "-m", "edgeirst", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and __version__ in r.stdout


def test_unknown_command_is_one_error_line():
    r = subprocess.run([sys.executable, "-m", "edgeirst", "trian"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.startswith("error:") and len(r.stderr.strip().splitlines()) == 1


def test_wheel_maps_top_level_folders_into_the_edgeirst_namespace(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {r.stderr.strip().splitlines()[-1:]}")
    names = zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist()
    for module in ("edgeirst/runtime/backends/onnxruntime.py", "edgeirst/quantize/__init__.py",
                   "edgeirst/jetson/__init__.py", "edgeirst/postprocess.py", "edgeirst/weights/aliases.json",
                   f"edgeirst/weights/{shipped_model('default').name}"):
        assert module in names, module
    assert not any(n.startswith(("runtime/", "jetson/", "quantize/")) for n in names), "generic top-level names leaked"


def test_messages_name_extras_that_exist():
    """Every `pip install 'edgeirst[X]'` a message suggests names an extra pyproject.toml defines."""
    import re
    import tomllib

    from edgeirst.errors import EXTRAS

    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    assert set(EXTRAS) <= extras, set(EXTRAS) - extras
    named = set()
    for folder in ("edgeirst", "runtime", "jetson", "quantize"):
        for path in (REPO / folder).rglob("*.py"):
            text = path.read_text()
            named |= set(re.findall(r"missing_extra\([^,]+,\s*\"(\w+)\"", text))
            named |= set(re.findall(r"edgeirst\[(\w+)\]", text))
    assert named and named <= extras, named - extras


def test_optional_modules_are_pyprojects_extras():
    """edgeirst.errors.OPTIONAL_MODULES (the CLI's one table for "needs X: pip install
    'edgeirst[extra]'") names every optional dependency of pyproject.toml under its extra."""
    import re
    import tomllib

    from edgeirst.errors import OPTIONAL_MODULES

    import_name = {"torch-pruning": "torch_pruning", "import-linter": "importlinter"}
    declared = {}
    for extra, requirements in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"].items():
        for req in requirements:
            dist = re.match(r"[A-Za-z0-9_.-]+", req).group(0)
            if dist != "edgeirst":  # test = edgeirst[train] + ...: the extra that installs it first
                declared[import_name.get(dist, dist)] = extra
    assert {m: extra for m, (_, extra) in OPTIONAL_MODULES.items()} == declared
