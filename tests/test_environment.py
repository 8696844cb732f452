"""requirements.txt and environment.yml carry the same exact pins."""
import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
PIN = re.compile(r"^\s*(?:-\s*)?([A-Za-z0-9_.\-]+)==([^\s#]+)")


def pins(text: str) -> dict[str, str]:
    return {m[1].lower().replace("_", "-"): m[2] for line in text.splitlines() if (m := PIN.match(line))}


def test_pins_agree_and_are_exact():
    req = pins((ROOT / "requirements.txt").read_text())
    env = pins((ROOT / "environment.yml").read_text())
    assert req == env
    lines = [l for l in (ROOT / "requirements.txt").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert len(lines) == len(req), "every requirement is pinned with =="
    for name, version in {"torch": "2.14.1", "torchvision": "0.29.1", "segmentation-models-pytorch": "0.6.0",
                          "jupyter-book": "1.0.4.post1"}.items():
        assert req[name] == version
    for name in ("fastai", "papermill", "nbval", "jupyter", "matplotlib", "seaborn", "pytest"):
        assert name in req


def test_installed_versions_match_the_pins():
    from importlib.metadata import version
    req = pins((ROOT / "requirements.txt").read_text())
    wrong = {n: (v, version(n)) for n, v in req.items() if version(n).split("+")[0] != v}
    assert not wrong, f"installed versions differ from requirements.txt: {wrong}"
