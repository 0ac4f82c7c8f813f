"""`lean-solve cache stats|prune`: what the generation cache holds, and making it smaller."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from solve_in_lean.cli import app
from solve_in_lean.cli.common import EXIT_OK, CacheOpt, ConfigOpt, print_json, settings_from
from solve_in_lean.errors import InputError

cache_app = typer.Typer(no_args_is_help=True, help="The generation cache: stats, prune.")
app.add_typer(cache_app, name="cache")


def _path(cache: str | None, config: str | None) -> Path:
    """The cache the options name, else the config's, else the default one (docs/config.md)."""
    settings = settings_from(config, cache=cache)
    path = settings.model_config(cache_by_default=True).cache
    if path is None:
        raise InputError("the cache is turned off (`cache = false` or --cache off); name a file with --cache PATH")
    if not Path(path).is_file():
        raise InputError(f"{path}: no cache file there yet (runs write it; see `lean-solve eval`)")
    return Path(path)


@cache_app.command("stats")
def stats(cache: CacheOpt = None, config: ConfigOpt = None,
          json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Size, requests and completions per model, oldest and newest entry, in-flight claims."""
    import sqlite3
    import time

    from solve_in_lean.models.cache import cache_stats

    path = _path(cache, config)
    try:
        info = cache_stats(path)
    except sqlite3.DatabaseError as e:
        raise InputError(f"{path}: not a lean-solve cache ({e})") from None
    if json_out:
        print_json(info)
        raise typer.Exit(EXIT_OK)

    def when(t: float | None) -> str:
        return "-" if t is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(t))

    typer.echo(f"{path}: {info['bytes'] / 1e6:.1f} MB, {info['requests']} requests, {info['completions']} "
               f"completions (oldest {when(info['oldest'])}, newest {when(info['newest'])})")
    for name, m in sorted(info["models"].items()):
        typer.echo(f"  {name}: {m['requests']} requests, {m['completions']} completions")
    claims = info["claims"]
    if claims["in_flight"] or claims["dead"]:
        typer.echo(f"  claims: {claims['in_flight']} being generated now, {claims['dead']} left by runs that died "
                   "(taken over when asked for again; `prune` drops them)")
    raise typer.Exit(EXIT_OK)


@cache_app.command("prune")
def prune(cache: CacheOpt = None, config: ConfigOpt = None,
          older_than_days: Optional[float] = typer.Option(None, "--older-than-days",
                                                          help="Delete completions older than this."),
          model: Optional[str] = typer.Option(None, "--model", help="Delete this model's completions "
                                                                    "(name, or backend:name)."),
          json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Delete old completions, or one model's, and compact the file. Runs that need them generate
    them again (a replay of an old run then samples anew)."""
    import sqlite3

    from solve_in_lean.models.cache import prune_cache

    if older_than_days is None and model is None:
        raise InputError("say what to delete: --older-than-days DAYS and/or --model NAME")
    if older_than_days is not None and not older_than_days >= 0:
        raise InputError("--older-than-days must be a number of days, at least 0")
    path = _path(cache, config)
    before = path.stat().st_size
    try:
        deleted = prune_cache(path, older_than_s=None if older_than_days is None else older_than_days * 86400,
                              model=model)
    except sqlite3.DatabaseError as e:
        raise InputError(f"{path}: cannot prune ({e})") from None
    after = path.stat().st_size
    if json_out:
        print_json({"path": str(path), "deleted": deleted, "bytes_before": before, "bytes_after": after})
    else:
        typer.echo(f"{path}: deleted {deleted} completions; {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")
    raise typer.Exit(EXIT_OK)
