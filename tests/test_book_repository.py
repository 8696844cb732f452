"""Publishing the book: the repository's address from the checkout's origin (never a made-up one) and the buttons it
turns on, the GitHub Actions workflow that builds with the command tested here, Binder's set-up."""
import shlex
import subprocess

import pytest
import yaml

from clothparse_lib import book
from clothparse_lib.book import repository, site

ROOT = book.ROOT
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
# the workflow's build step, which this suite runs (test_the_committed_book_builds_with_the_workflows_command)
BUILD_COMMAND = ".venv/bin/clothparse book build"


@pytest.mark.parametrize("remote", ["https://github.com/owner/clothparse.git", "https://github.com/owner/clothparse",
                                    "git@github.com:owner/clothparse.git", "ssh://git@github.com/owner/clothparse.git",
                                    "https://user@github.com/owner/clothparse/"])
def test_github_remotes_give_the_repository_address(remote):
    assert repository.github_url(remote) == "https://github.com/owner/clothparse"


@pytest.mark.parametrize("remote", ["https://gitlab.com/owner/clothparse.git", "/srv/git/clothparse.git",
                                    "https://github.com/owner", "https://github.com.evil.org/owner/clothparse"])
def test_other_remotes_give_none(remote):
    assert repository.github_url(remote) is None


def _git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_the_address_comes_from_origin_or_the_setting(tmp_path, monkeypatch):
    monkeypatch.delenv(repository.REPOSITORY_VAR, raising=False)
    monkeypatch.delenv(repository.BRANCH_VAR, raising=False)
    assert repository.repository_url(tmp_path) is None  # not a checkout
    _git(tmp_path, "init", "-q", "-b", "trunk")
    assert repository.repository_url(tmp_path) is None  # no origin
    _git(tmp_path, "remote", "add", "origin", "/srv/git/clothparse.git")
    assert repository.repository_url(tmp_path) is None  # not on GitHub
    _git(tmp_path, "remote", "set-url", "origin", "git@github.com:owner/clothparse.git")
    assert repository.repository_url(tmp_path) == "https://github.com/owner/clothparse"
    assert repository.repository_branch(tmp_path) == "trunk"  # no origin/HEAD known: the checked-out branch
    monkeypatch.setenv(repository.BRANCH_VAR, "main")
    assert repository.repository_branch(tmp_path) == "main"
    monkeypatch.setenv(repository.REPOSITORY_VAR, "https://github.com/fork/clothparse.git")
    assert repository.repository_url(tmp_path) == "https://github.com/fork/clothparse"
    assert repository.repository_url(tmp_path, "none") is None
    with pytest.raises(ValueError, match="not a GitHub repository address"):
        repository.repository_url(tmp_path, "https://gitlab.com/owner/clothparse")


def test_the_buttons_come_only_with_an_address(tmp_path):
    committed = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert "repository" not in committed and "launch_buttons" not in committed  # no address is committed
    assert repository.book_config(ROOT, None) == committed
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    _git(tmp_path, "init", "-q")
    config = repository.book_config(tmp_path / "site", "https://github.com/owner/clothparse", "main")
    assert config["repository"] == {"url": "https://github.com/owner/clothparse", "branch": "main", "path_to_book": "site"}
    assert config["html"]["use_repository_button"] and config["html"]["use_issues_button"]
    assert config["launch_buttons"]["binderhub_url"] == repository.BINDERHUB_URL
    assert config["launch_buttons"]["colab_url"] == repository.COLAB_URL
    assert config["bibtex_bibfiles"] == committed["bibtex_bibfiles"]  # the rest of the book's configuration is kept


def test_the_workflow_builds_with_the_tested_command_and_deploys_to_pages():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads the key `on` as true
    assert "push" in triggers
    steps = workflow["jobs"]["build"]["steps"]
    build = next(s for s in steps if s.get("name") == "Build the book")
    assert build["run"].strip() == BUILD_COMMAND
    assert any(s.get("run", "").strip() == "scripts/setup_venv.sh" for s in steps)
    npm = [i for i, s in enumerate(steps) if s.get("run", "").startswith("npm ci")]  # the Try it page's runtime
    assert npm and npm[0] < steps.index(build)
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["steps"][0]["uses"].startswith("actions/deploy-pages")
    assert workflow["permissions"]["pages"] == "write"


@pytest.mark.slow
def test_the_committed_book_builds_with_the_workflows_command(monkeypatch):
    """The command of the workflow's build step, here: the committed chapters rendered, no execution, warnings as
    errors, the References page among them."""
    if not (ROOT / ".venv" / "bin" / "clothparse").exists():
        pytest.skip("no .venv (scripts/setup_venv.sh)")
    monkeypatch.delenv(repository.REPOSITORY_VAR, raising=False)
    out = subprocess.run(shlex.split(BUILD_COMMAND), cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "HTML:" in out.stdout and "repository buttons:" in out.stdout
    html = ROOT / "_build" / "html"
    assert (html / "index.html").exists() and (html / "book" / "references.html").exists()
    assert (html / "book" / "try.html").exists()  # the Try it page and what it loads
    assert {"page.mjs", "parse.mjs", "example.png"} <= {p.name for p in (html / site.SITE_FOLDER).iterdir()}
    assert {p.name for p in (html / site.SITE_FOLDER / "ort").iterdir()} == set(site.ORT_FILES)


def test_binder_installs_the_pins_and_the_project():
    binder = ROOT / "binder"
    assert "-r ../requirements.txt" in (binder / "requirements.txt").read_text().splitlines()
    post = (binder / "postBuild").read_text()
    assert "pip install --no-deps -e ." in post and (binder / "postBuild").stat().st_mode & 0o111
    assert (binder / "runtime.txt").read_text().strip() == "python-3.11"
