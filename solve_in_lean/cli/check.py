"""`lean-solve check FILE`: check a Lean file and apply the verification rules."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from solve_in_lean.cli import app
from solve_in_lean.cli.common import (ConfigOpt, EXIT_OK, EXIT_REJECTED, EXIT_UNAVAILABLE, LeanBackendOpt,
                                      TimeoutOpt, fail, load_settings_or_fail, make_checker, print_json)


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    p = Path(path)
    if not p.is_file():
        fail(f"{path}: no such file")
    return p.read_bytes()


@app.command()
def check(
    file: str = typer.Argument(..., help="Lean file to check, or - for standard input."),
    backend: LeanBackendOpt = None,
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    timeout: TimeoutOpt = None,
    allow_axiom: list[str] = typer.Option([], "--allow-axiom", help="Accept this axiom too (repeatable)."),
    allow_native: bool = typer.Option(False, "--allow-native", help="Accept native_decide (Lean.ofReduceBool)."),
    header: Optional[str] = typer.Option(None, "--header", help="File with imports/opens to check the code under."),
    theorem: Optional[str] = typer.Option(None, "--theorem", help="Name of the theorem that must be proved."),
    statement: Optional[str] = typer.Option(None, "--statement", help="The proposition it must state."),
    mathlib: Optional[bool] = typer.Option(None, "--mathlib/--no-mathlib", help="Use the Mathlib workspace."),
    config: ConfigOpt = None,
) -> None:
    """Check FILE with Lean and the verification rules.

    Exit 0 when verified; 1 when rejected (errors, sorry, axioms, wrong statement, refused
    constructs, timeout or memory cap); 2 when the check could not run (missing backend, bad
    arguments, input that is not UTF-8 text or too large, Lean itself crashed).
    """
    from solve_in_lean.verify import Policy, Target, verify

    if (theorem is None) != (statement is None):
        fail("--theorem and --statement go together: the name and the proposition it must prove")
    if timeout is not None and timeout <= 0:
        fail("--timeout must be a positive number of seconds")
    settings = load_settings_or_fail(config)
    code = _read(file)
    header_text = _read(header).decode("utf-8", errors="strict") if header else None
    checker = make_checker(settings, backend, timeout=timeout, mathlib=mathlib)
    policy = Policy.with_extra([*settings.lean.allow_axioms, *allow_axiom],
                               allow_native or settings.lean.allow_native)
    target = Target(theorem, statement) if theorem and statement else None
    with checker:
        verdict = verify(code, checker, header=header_text, target=target, policy=policy, timeout_s=timeout)
    if json_out:
        print_json(verdict.to_dict())
    else:
        _report(file, verdict)
    if verdict.check.status in ("invalid_input", "crashed"):
        raise typer.Exit(EXIT_UNAVAILABLE)  # the check itself could not run
    raise typer.Exit(EXIT_OK if verdict.verified else EXIT_REJECTED)


def _report(file: str, verdict) -> None:  # type: ignore[no-untyped-def]
    name = "<stdin>" if file == "-" else file
    res = verdict.check
    for m in res.messages:
        typer.echo(m.format(name))
    where = f"{res.backend}" + (f", Lean {res.lean_version}" if res.lean_version else "")
    if verdict.verified:
        typer.secho(f"{name}: verified ({where}, {res.elapsed_s:.2f} s)", fg="green")
    else:
        typer.secho(f"{name}: rejected ({where}, {res.elapsed_s:.2f} s)", fg="red")
        for reason in verdict.reasons:
            typer.echo(f"  - {reason}")
    for decl, axioms in res.axioms.items():
        typer.echo(f"  axioms of {decl}: {', '.join(axioms) if axioms else 'none'}")
