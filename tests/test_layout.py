"""The library's shape: packages in pipeline order, each module's public names listed, parsing a photo without
the training stack."""
import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "clothparse_lib"
# Each package (or top-level module) may import only from its own layer or the layers below it.
# inference (the exported model's card, the prior's checks, the ONNX runtime, the parsing path) is torch-free: above
# the data readers, below the model code that writes what it reads.
LAYERS = {"settings": 0, "taxonomy": 0, "profiles": 0, "paper": 0, "provenance": 0, "metrics": 0, "storage": 0,
          "locks": 0, "runfolder": 0, "workers": 0, "data": 1, "inference": 2, "models": 3,
          "training": 4, "evaluation": 5, "refinement": 5, "results": 6, "book": 7, "cli": 8}
MODULES = sorted(p for p in LIB.rglob("*.py") if "__pycache__" not in p.parts)


def _name(path: Path) -> str:
    parts = path.relative_to(LIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> set[str]:
    """The library's modules that ``path`` imports (at its top or inside functions), as dotted names."""
    package = _name(path).split(".") if path.name == "__init__.py" else _name(path).split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found |= {f"{module}.{a.name}" for a in node.names} if node.level and not node.module else {module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m.startswith("clothparse_lib.")}


def _bound(target: ast.expr) -> list[str]:
    """The names an assignment's target binds: ``A = ...``, and each of ``A, (B, C) = ...``."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for t in target.elts for name in _bound(t)]
    return []


def test_bound_names_of_tuple_assignments():
    tree = ast.parse("A, (B, _C) = 1, (2, 3)\nD: int = 4\nx.y = 5")
    assert [name for n in tree.body for t in getattr(n, "targets", [getattr(n, "target", None)]) for name in _bound(t)] \
        == ["A", "B", "_C", "D"]


def _layer(module: str) -> int:
    return LAYERS[module.split(".")[1]]


def test_every_module_has_a_layer():
    assert {_name(p).split(".")[1] for p in MODULES if _name(p) != "clothparse_lib"} == set(LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_imports_go_down_the_layers(path):
    if _name(path) == "clothparse_lib":
        return
    upward = [m for m in _imported(path) if _layer(m) > _layer(_name(path))]
    assert not upward, f"{_name(path)} (layer {_layer(_name(path))}) imports from a higher layer: {upward}"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_public_names_are_listed(path):
    """``__all__`` lists exactly the public names a module defines (a package: what it re-exports, all importable)."""
    module = importlib.import_module(_name(path))
    assert hasattr(module, "__all__"), f"{_name(path)} has no __all__"
    assert all(hasattr(module, n) for n in module.__all__)
    if path.name != "__init__.py":
        tree = ast.parse(path.read_text())
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        defined |= {name for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                    for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) for name in _bound(t)}
        public = {n for n in defined if not n.startswith("_")}
        assert set(module.__all__) == public


def test_parsing_a_photo_does_not_load_the_training_stack():
    code = ("import sys, clothparse_lib.evaluation.parsing\n"
            "print(sorted(m for m in sys.modules if m.startswith(('clothparse_lib.training', 'fastai.callback.schedule'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_tree_is_clean_under_the_linter():
    """ruff, as pyproject.toml configures it (line length, import order, pyflakes), finds nothing."""
    ruff = LIB.parent / ".venv" / "bin" / "ruff"
    if not ruff.exists():
        pytest.skip("no .venv/bin/ruff (scripts/setup_venv.sh installs it)")
    out = subprocess.run([str(ruff), "check", "--no-cache", "--output-format", "concise", str(LIB.parent)],
                         capture_output=True, text=True, cwd=LIB.parent)
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-2000:]


def test_the_inference_layer_and_the_command_line_load_no_torch():
    """The inference package, and the command line until a command runs, import neither torch nor the model code."""
    code = ("import sys, clothparse_lib.inference.runtime, clothparse_lib.inference.parsing, clothparse_lib.cli\n"
            "clothparse_lib.cli.build_parser()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'fastai', 'onnxruntime') or "
            "m.startswith(('clothparse_lib.models', 'clothparse_lib.training', 'clothparse_lib.evaluation'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
