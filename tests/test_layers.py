"""Imports go one way (DESIGN.md): nothing below imports anything above it, whether at the top of
a module or inside a function. Read from the source with `ast`, so a lazy import counts too."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RANKS = [
    ("solve_in_lean.errors", "solve_in_lean.parallel", "solve_in_lean.progress", "solve_in_lean.records",
     "solve_in_lean.timing", "solve_in_lean.raycluster", "solve_in_lean.world.curriculum", "solve_in_lean.threads"),
    ("solve_in_lean.lean", "solve_in_lean.models", "solve_in_lean.answers"),
    ("solve_in_lean.verify", "solve_in_lean.options", "solve_in_lean.prompts", "solve_in_lean.problems",
     "solve_in_lean.informal", "solve_in_lean.runlock", "solve_in_lean.batch"),
    ("solve_in_lean.settings", "solve_in_lean.solve", "solve_in_lean.search", "solve_in_lean.presets",
     "solve_in_lean.code", "solve_in_lean.verifier"),
    ("solve_in_lean.pipeline", "solve_in_lean.augment"),
    ("solve_in_lean.eval", "solve_in_lean.world"),
    ("solve_in_lean.cli", "solve_in_lean.check_server"),
]
"""Lowest first. A module may import modules of its own rank or below. The check server runs
the CLI's own `check` code, and `check` asks the server first: one rank."""
ENTRY_POINTS = ("solve_in_lean", "solve_in_lean.__main__")
"""The package itself and `python -m solve_in_lean`: above everything, ranked by nothing."""


def rank(module: str) -> int | None:
    for i, prefixes in enumerate(RANKS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports, relative imports resolved."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
    return found


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_nothing_below_imports_anything_above():
    wrong = []
    for path in sources("solve_in_lean"):
        own = rank(module_name(path))
        if own is None:
            continue
        wrong += [f"{module_name(path)} (rank {own}) imports {m} (rank {rank(m)})"
                  for m in sorted(imports(path)) if (r := rank(m)) is not None and r > own]
    assert wrong == []


def test_every_module_has_a_rank():
    """A module with no rank would be skipped by the test above, so a new package must say where it sits."""
    assert [m for p in sources("solve_in_lean") if rank(m := module_name(p)) is None and m not in ENTRY_POINTS] == []


def test_the_named_directions_of_the_issue():
    def offenders(package: str, forbidden: str) -> list[str]:
        return [module_name(p) for p in sources(package)
                if any(m == forbidden or m.startswith(forbidden + ".") for m in imports(p))]

    assert offenders("solve_in_lean/eval", "solve_in_lean.cli") == []
    assert offenders("solve_in_lean/models", "autoformalize") == []
    assert offenders("autoformalize", "solve_in_lean") == []


def test_the_checker_sees_imports_inside_functions(tmp_path):
    """The test above would pass vacuously if lazy imports were invisible to it."""
    found = imports(ROOT / "solve_in_lean" / "cli" / "solve.py")
    assert "solve_in_lean.pipeline.PipelineConfig" in found  # imported inside the command function
    assert rank("solve_in_lean.eval.run") > rank("solve_in_lean.pipeline") > rank("solve_in_lean.models.base")
