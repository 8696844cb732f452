"""The Jupyter tools in the project's environment: .venv/bin has the console scripts (jupyter and its subcommands,
papermill, pytest, jupyter-book), run by .venv's python; the kernel is .venv's; the README's papermill and nbval lines
run."""
import hashlib
import json
import os
import re
import shlex
import subprocess
from importlib.metadata import version

import nbformat
import pytest

from clothparse_lib import book

ROOT = book.ROOT
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
TOOLS = ("jupyter", "jupyter-lab", "jupyter-nbconvert", "jupyter-kernelspec", "papermill", "pytest", "jupyter-book")

pytestmark = pytest.mark.skipif(not PYTHON.exists(), reason="no .venv (scripts/setup_venv.sh)")


def _run(*cmd, **kwargs) -> str:
    out = subprocess.run(cmd, cwd=kwargs.pop("cwd", ROOT), capture_output=True, text=True, timeout=300, **kwargs)
    assert out.returncode == 0, f"{cmd}: {out.stdout[-2000:]}{out.stderr[-2000:]}"
    return out.stdout + out.stderr


def _readme_line(prefix: str) -> str:
    """The README's command line starting with ``prefix``, without its comment."""
    lines = [l for l in (ROOT / "README.md").read_text().splitlines() if l.startswith(prefix)]
    assert len(lines) == 1, f"the README should show one line starting with {prefix!r}"
    return lines[0].split("  #")[0].strip()


def test_venv_was_built_by_this_setup_script():
    """.venv's marker names the base's key and this script's hash: a changed script rebuilds .venv."""
    digest = hashlib.sha256((ROOT / "scripts" / "setup_venv.sh").read_bytes()).hexdigest()[:16]
    assert list(VENV.glob(f".clothparse-base-*-setup-{digest}")), "stale .venv: run scripts/setup_venv.sh"


@pytest.mark.parametrize("tool", TOOLS)
def test_console_scripts_run_with_the_projects_python(tool):
    script = VENV / "bin" / tool
    assert script.exists() and os.access(script, os.X_OK)
    assert script.read_text().splitlines()[0] == f"#!{PYTHON}"


def test_the_tools_are_the_projects():
    assert _run(str(VENV / "bin" / "jupyter"), "lab", "--version").strip() == version("jupyterlab")
    assert _run(str(PYTHON), "-m", "jupyter", "lab", "--version").strip() == version("jupyterlab")
    assert _run(str(VENV / "bin" / "pytest"), "--version").strip() == f"pytest {version('pytest')}"
    assert version("papermill") in _run(str(VENV / "bin" / "papermill"), "--version")
    assert version("jupyter-book") in _run(str(VENV / "bin" / "jupyter-book"), "--version")
    found = _run("bash", "-c", f"source {VENV}/bin/activate && command -v {' '.join(TOOLS)}").split()
    assert found == [str(VENV / "bin" / t) for t in TOOLS]  # an activated .venv runs the project's own


def test_the_kernel_is_the_projects():
    specs = json.loads(_run(str(VENV / "bin" / "jupyter"), "kernelspec", "list", "--json"))["kernelspecs"]
    assert specs["python3"]["spec"]["argv"][0] == str(PYTHON)


def test_make_lab_opens_the_chapters_with_the_projects_jupyter():
    recipe = _run("make", "-n", "lab")
    assert re.search(r"(^|\s)\.venv/bin/jupyter lab book/", recipe, re.M)


@pytest.mark.slow
def test_readme_papermill_line_runs_a_chapter_with_another_profile(tmp_path):
    """The README's papermill line as written, in a scratch folder that has the project's .venv and book."""
    line = _readme_line(".venv/bin/papermill ")
    assert "-p profile smoke" in line
    (tmp_path / ".venv").symlink_to(VENV)
    (tmp_path / "book").symlink_to(ROOT / "book")
    _run("bash", "-c", line, cwd=tmp_path)
    output = tmp_path / shlex.split(line)[2]
    nb = nbformat.read(output, as_version=4)
    injected = [c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'profile = "smoke"' in injected[0]
    code = [c for c in nb.cells if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])]
    assert all(c.execution_count for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not (ROOT / "book" / output.name).exists()  # the chapter itself is left as it was


def test_readme_nbval_line_collects_a_reference():
    line = _readme_line(".venv/bin/pytest ")
    target = next(a for a in shlex.split(line) if a.endswith(".ipynb"))
    assert (ROOT / target).exists() and target.startswith("tests/notebooks/")
    collected = _run(*shlex.split(line), "--collect-only", "-q", "-p", "no:cacheprovider")
    assert re.search(rf"{re.escape(target)}::Cell \d+", collected)
