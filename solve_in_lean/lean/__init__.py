"""Lean backends behind one interface (`LeanChecker.check`), chosen by name.

    checker = get_checker("kernel")            # bundled Lean 4.35 kernel, prelude files
    checker = get_checker("repl", mathlib=True)  # lean-interact REPL, header reused
    checker = get_checker("lake")              # `lake env lean` per file
    checker = get_checker("auto")              # the best one this machine can run
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from solve_in_lean.lean.base import LeanChecker

BACKENDS = ("repl", "lake", "kernel", "ray")

__all__ = ["BACKENDS", "CheckRequest", "CheckResult", "EvalOutput", "LeanChecker", "LeanUnavailable",
           "Message", "auto_backend", "get_checker"]


def __getattr__(name: str) -> Any:
    """The interface types, from `lean.base` on first use: `lean.lifecycle`, which every command
    imports first, must not pay for them."""
    if name in ("CheckRequest", "CheckResult", "EvalOutput", "LeanChecker", "LeanUnavailable", "Message"):
        from solve_in_lean.lean import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def auto_backend() -> str:
    """`repl` when lean-interact, `lake` and a built REPL are all there; `lake` with a toolchain
    alone; else the bundled `kernel`. Cheap: looks at files, starts nothing."""
    import importlib.util

    from solve_in_lean.lean.base import LeanUnavailable
    from solve_in_lean.lean.toolchain import find_tool, project_dir, repl_dir

    if find_tool("lake") is None:
        return "kernel"
    if importlib.util.find_spec("lean_interact") is None:
        return "lake"
    try:
        repl_dir(project_dir(None))
    except LeanUnavailable:
        return "lake"
    return "repl"


def get_checker(name: str, **options: Any) -> LeanChecker:
    """Build the backend called `name` (or `auto`); raises LeanUnavailable saying how to enable it."""
    if name == "auto":
        name = auto_backend()
    if name == "kernel":
        from solve_in_lean.lean.kernel import KernelChecker

        options.pop("mathlib", None)
        return KernelChecker(**options)
    if name == "lake":
        from solve_in_lean.lean.lake import LakeChecker

        return LakeChecker(**options)
    if name == "repl":
        from solve_in_lean.lean.repl import ReplChecker

        return ReplChecker(**options)
    if name == "ray":  # inner="kernel"|"lake"|"repl", actors=N, address=...: see lean/ray_backend.py
        from solve_in_lean.lean.ray_backend import RayChecker

        return RayChecker(**options)
    raise ValueError(f"unknown Lean backend {name!r}; choose one of: {', '.join(BACKENDS)}")
