"""`lean-solve models`: the model presets (solve_in_lean/presets), with the protocol each reproduces."""

from __future__ import annotations

import typer

from solve_in_lean.cli import app
from solve_in_lean.cli.common import EXIT_OK, print_json


@app.command("models")
def models_command(json_out: bool = typer.Option(False, "--json", help="Print JSON."),
                   verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print each citation.")) -> None:
    """List the model presets that `--preset NAME` (or `preset =` in a config file's model table) selects."""
    from solve_in_lean.presets import list_presets

    presets = list_presets()
    if json_out:
        print_json([{"name": p.name, "family": p.family, "model": p.model, "format": p.format, "extract": p.extract,
                     "max_new_tokens": p.max_new_tokens, "temperature": p.temperature, "top_p": p.top_p,
                     "rounds": p.rounds, "stop": list(p.stop), "tasks": sorted(p.prompts),
                     "published": p.published, "citation": p.citation} for p in presets])
        raise typer.Exit(EXIT_OK)
    for p in presets:
        typer.echo(f"{p.name:34} {p.model or '(any chat model: --model)':40} {p.format:10} "
                   f"max_new_tokens={p.max_new_tokens} T={p.temperature} rounds={p.rounds} extract={p.extract}")
        if p.published:
            typer.echo(f"{'':34} published: {p.published}")
        if verbose:
            typer.echo(f"{'':34} protocol: {' '.join(p.citation.split())}")
    raise typer.Exit(EXIT_OK)
