"""Natural language <-> Lean 4 statements. Takes a generator and a Lean checker as arguments;
imports nothing from `solve_in_lean`.

The names below load on first use: `import autoformalize.lexer` (what the verifier needs on
every `lean-solve check`) must not pay for the prompting, formalizing and back-translating
modules."""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_EXPORTS = {
    "backtranslate": "autoformalize.backtranslate",
    "extract": "autoformalize.extract",
    "extract_lean": "autoformalize.extract",
    "Candidate": "autoformalize.formalize",
    "FormalizationResult": "autoformalize.formalize",
    "formalize": "autoformalize.formalize",
    "guess_kind": "autoformalize.formalize",
    "FormalProblem": "autoformalize.problem",
    "minif2f_problem": "autoformalize.problem",
    "StatementError": "autoformalize.statement",
    "TheoremParts": "autoformalize.statement",
    "parse_theorem": "autoformalize.statement",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        """Importing a submodule binds it to its name in the package; for `formalize`, `extract`
        and `backtranslate` that name means the function (as when this file imported them all)."""
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
