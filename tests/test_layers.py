"""
The package's layers: ``exact/`` (ground truth), ``reinforce/`` (the algorithm) and ``common/`` (a VecEnv) on the ground
floor, ``zoo/`` above them; no module imports one that imports it back, directly or through others.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "sb3_reinforce"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports() -> dict[str, set[str]]:
    """For every module of the package, the modules of the package it imports (at any place in the file)."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    imports: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sb3_reinforce"):
                imported |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names if alias.name.startswith("sb3_reinforce")}
        imports[name] = {module for module in imported if module in modules and module != name}
    return imports


@pytest.mark.parametrize(
    "layer, forbidden",
    [
        ("sb3_reinforce.exact", ("sb3_reinforce.reinforce", "sb3_reinforce.zoo", "sb3_reinforce.compare")),
        ("sb3_reinforce.reinforce", ("sb3_reinforce.exact", "sb3_reinforce.zoo", "sb3_reinforce.compare")),
        (
            "sb3_reinforce.common",
            ("sb3_reinforce.exact", "sb3_reinforce.reinforce", "sb3_reinforce.zoo", "sb3_reinforce.compare"),
        ),
    ],
)
def test_ground_floor_imports_nothing_above_it(layer: str, forbidden: tuple[str, ...]) -> None:
    imports = package_imports()
    for module, imported in imports.items():
        if module.startswith(layer):
            assert not {name for name in imported if name.startswith(forbidden) or name == "sb3_reinforce"}, module


def test_no_import_cycle() -> None:
    imports = package_imports()
    # The packages' __init__ files count as modules: a cycle through a re-export is still a cycle
    visiting, done = set(), set()

    def visit(module: str, path: list[str]) -> None:
        if module in done:
            return
        assert module not in visiting, " -> ".join([*path, module])
        visiting.add(module)
        for imported in imports[module]:
            visit(imported, [*path, module])
        visiting.discard(module)
        done.add(module)

    for module in imports:
        visit(module, [])
