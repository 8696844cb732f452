"""The book's repository: its GitHub address, taken from the checkout's ``origin`` remote (or a setting), never a
made-up one, and the jupyter-book configuration it turns on: the repository, issue and download buttons, and Binder
and Colab launch buttons on the chapters. Without a GitHub address the book has none of these buttons.

The committed ``_config.yml`` carries no address: :func:`book_config` adds it to a copy that :func:`html.build_html`
hands to jupyter-book (``--config``).
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

__all__ = ["REPOSITORY_VAR", "BRANCH_VAR", "NO_REPOSITORY", "BINDERHUB_URL", "COLAB_URL", "github_url", "origin",
           "repository_url", "repository_branch", "book_config"]

REPOSITORY_VAR = "CLOTHPARSE_REPOSITORY_URL"  # the repository's GitHub address, instead of origin's
BRANCH_VAR = "CLOTHPARSE_REPOSITORY_BRANCH"  # the branch the buttons link to, instead of origin's default branch
NO_REPOSITORY = "none"  # as the address: no repository buttons even with a GitHub origin
BINDERHUB_URL = "https://mybinder.org"
COLAB_URL = "https://colab.research.google.com"

_GITHUB = re.compile(r"^(?:https?://(?:[^@/]+@)?github\.com/|git@github\.com:|ssh://git@github\.com(?::\d+)?/)"
                     r"(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)/(?P<repo>[A-Za-z0-9_.-]+?)(?:\.git)?/?$")


def github_url(remote: str) -> str | None:
    """``https://github.com/OWNER/REPO`` for a GitHub remote (HTTPS, SSH or scp-like, with or without ``.git``);
    None for any other address."""
    found = _GITHUB.match(remote.strip())
    return found and f"https://github.com/{found['owner']}/{found['repo']}"


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def origin(root: Path) -> str | None:
    """The ``origin`` remote's address of the checkout holding ``root``; None outside a checkout or without one."""
    return _git(root, "remote", "get-url", "origin")


def repository_url(root: Path, override: str | None = None) -> str | None:
    """The book's GitHub address: ``override``, else ``$CLOTHPARSE_REPOSITORY_URL``, else the checkout's ``origin``
    when it is a GitHub address; None when there is none (or the setting is ``none``). A setting that is no GitHub
    address is refused (the launch buttons need one)."""
    chosen = override or os.environ.get(REPOSITORY_VAR)
    if chosen:
        if chosen.strip().lower() == NO_REPOSITORY:
            return None
        url = github_url(chosen)
        if url is None:
            raise ValueError(f"not a GitHub repository address: {chosen!r} (expected https://github.com/OWNER/REPO, "
                             f"or {NO_REPOSITORY!r} for no repository buttons)")
        return url
    remote = origin(root)
    return github_url(remote) if remote else None


def repository_branch(root: Path, override: str | None = None) -> str:
    """The branch the buttons link to: ``override``, else ``$CLOTHPARSE_REPOSITORY_BRANCH``, else origin's default
    branch as the checkout knows it, else the checked-out branch, else ``main``."""
    chosen = override or os.environ.get(BRANCH_VAR)
    if chosen:
        return chosen
    head = _git(root, "symbolic-ref", "--short", "refs/remotes/origin/HEAD")
    if head:
        return head.split("/", 1)[-1]
    return _git(root, "symbolic-ref", "--short", "HEAD") or "main"  # detached: main


def book_config(root: Path, url: str | None, branch: str = "main") -> dict:
    """``<root>/_config.yml`` with the repository ``url`` and the buttons it allows (unchanged when ``url`` is None).
    ``path_to_book``: where ``root`` lies in its checkout (the buttons link to ``<url>/blob/<branch>/<path>...``)."""
    import yaml

    config = yaml.safe_load((Path(root) / "_config.yml").read_text()) or {}
    if url is None:
        return config
    top = _git(root, "rev-parse", "--show-toplevel")
    inside = top and Path(root).resolve().is_relative_to(Path(top).resolve())
    path = Path(root).resolve().relative_to(Path(top).resolve()).as_posix() if inside else ""
    config["repository"] = {"url": url, "branch": branch, "path_to_book": "" if path == "." else path}
    config["html"] = {**config.get("html", {}), "use_repository_button": True, "use_issues_button": True}
    config["launch_buttons"] = {**config.get("launch_buttons", {}), "binderhub_url": BINDERHUB_URL,
                                "colab_url": COLAB_URL, "notebook_interface": "jupyterlab"}
    return config
