"""`lean-solve report`: compare run directories in a table, test two runs item by item, plot."""

from __future__ import annotations

from typing import Optional

import typer

from solve_in_lean.cli import app
from solve_in_lean.cli.common import EXIT_OK, check_writable_dir, print_json
from solve_in_lean.errors import InputError


@app.command("report")
def report_command(
    run_dirs: list[str] = typer.Argument(..., help="Run directories written by `lean-solve eval` (or "
                                                        "one `lean-solve iterate` directory: plots per round)."),
    out: Optional[str] = typer.Option(None, "--out", "-o",
                                      help="Folder for report.json and the PNGs (default: RUN_DIR/report for "
                                           "one run, ./report for several)."),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level of the paired test."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Compare runs: a table of their metrics, PNG plots, and for two runs a paired test.

    With two runs of one task: each metric's difference and an exact paired test (McNemar for
    yes/no outcomes, sign test for graded ones) on the items both finished.
    """
    from pathlib import Path

    from solve_in_lean.eval.report import report
    from solve_in_lean.eval.run import load_run

    if not 0 < alpha < 1:
        raise InputError("--alpha must be between 0 and 1")
    from solve_in_lean.eval.iterate import is_iteration

    for run_dir in run_dirs if not (len(run_dirs) == 1 and is_iteration(run_dirs[0])) else []:
        load_run(run_dir).records()  # not a run, or a damaged records file: one sentence before any work
    target = Path(out) if out else Path(run_dirs[0]) / "report" if len(run_dirs) == 1 else Path("report")
    check_writable_dir(target, "the report folder")
    result = report(run_dirs, target, alpha=alpha)
    if json_out:
        print_json({k: v for k, v in result.items() if not k.endswith("text") and k != "table"})
    else:
        typer.echo(result["table"])
        if "comparison_text" in result:
            typer.echo("\n" + result["comparison_text"])
            if not any(c["n"] for c in result["comparison"].values()):
                typer.echo("note: the two runs share no finished items, so nothing could be paired")
            elif not result["same_data"]:
                typer.echo("note: the two runs used different data files; only shared item ids are paired")
        elif len(run_dirs) == 2:
            typer.echo("\n(no paired comparison: the two runs are of different tasks)")
        typer.echo("\nPlots: " + ", ".join(result["plots"]))
    raise typer.Exit(EXIT_OK)
