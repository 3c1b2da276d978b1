"""The package's layers (README, "Layout of the repository"): data flows one way, so no module imports upward."""

import ast
from pathlib import Path

import pytest

import nwb_cloud

# lowest first; a sub-package may import its own layer and any below it, lazily or not
LAYERS = [
    {"errors", "settings", "files", "processes"},
    {"cloud"},
    {"datasets"},
    {"refs"},
    {"access"},
    {"workloads"},
    {"analysis"},
    {"suite"},
    {"results"},
    {"recommend"},
    {"convert", "batch"},
    {"fleet"},
    {"report"},
    {"cli", "__main__", "__init__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
ROOT = Path(nwb_cloud.__file__).parent
MODULES = sorted(ROOT.rglob("*.py"))


def imported_layers(path: Path) -> set[str]:
    layers = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
        names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        layers |= {name.split(".")[1] for name in names if name.startswith("nwb_cloud.")}
    return layers


def test_every_sub_package_has_a_layer():
    assert {path.relative_to(ROOT).parts[0].removesuffix(".py") for path in MODULES} <= set(RANK)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_a_layer_above_its_own(path):
    own = path.relative_to(ROOT).parts[0].removesuffix(".py")
    upward = {layer for layer in imported_layers(path) if RANK[layer] > RANK[own]}
    assert not upward, f"{path.relative_to(ROOT)} imports {sorted(upward)}, above {own}"
