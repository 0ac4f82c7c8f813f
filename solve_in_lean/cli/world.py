"""`lean-solve world`: the small world (synthetic prelude curriculum and a CPU-trained model)."""

from __future__ import annotations

from typing import Optional

import typer

from solve_in_lean.cli import app
from solve_in_lean.cli.common import EXIT_OK, check_writable_dir, print_json
from solve_in_lean.errors import InputError

world_app = typer.Typer(no_args_is_help=True, help="The small world: a synthetic curriculum the bundled Lean "
                                                   "checks, and a few-million-parameter model trained on it.")
app.add_typer(world_app, name="world")


@world_app.command("export")
def export_command(
    out: str = typer.Option(..., "--out", "-o", help="Folder for the JSONL files."),
    train: int = typer.Option(2000, "--train", help="Training problems."),
    valid: int = typer.Option(100, "--valid", help="Validation problems."),
    test: int = typer.Option(100, "--test", help="Test problems."),
    seed: int = typer.Option(0, "--seed", help="Seed of the generator (same seed, same problems)."),
) -> None:
    """Write the curriculum's splits: SPLIT.jsonl (lean-solve, formalize, backtranslate and training),
    SPLIT_cot.jsonl (cot) and SPLIT_prove.jsonl (prove), in the format `lean-solve eval` reads."""
    from solve_in_lean.world.curriculum import export

    if min(train, valid, test) < 0:
        raise InputError("--train, --valid and --test must be at least 0")
    target = check_writable_dir(out, "the output folder")
    paths = export(target, {s: n for s, n in (("train", train), ("valid", valid), ("test", test)) if n}, seed=seed)
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")
    raise typer.Exit(EXIT_OK)


@world_app.command("build")
def build_command(
    link: Optional[str] = typer.Option(None, "--link", help="Also make this path a link to the built folder "
                                                           "(examples/transfer_small_world.toml reads runs/small-world)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Train the small-world model on the CPU (minutes), or find it in the user cache.

    Prints where the model (the world model refined on its own verified programs), the world and
    base models (the iterate and transfer examples' starting points) and the curriculum's splits
    are. Rebuilt only when the recipe, the curriculum or the prompts change."""
    from pathlib import Path

    from solve_in_lean.world.model import build

    link_path = Path(link) if link else None
    if link_path is not None and link_path.exists() and not link_path.is_symlink():
        raise InputError(f"--link {link_path} exists and is not a link; choose another path")
    wm = build(progress=None, log=lambda s: typer.echo(s, err=True))
    if link_path is not None:
        link_path.parent.mkdir(parents=True, exist_ok=True)
        if link_path.is_symlink():
            link_path.unlink()
        link_path.symlink_to(wm.root.resolve(), target_is_directory=True)
    info = {"root": str(wm.root), "model": str(wm.model), "base": str(wm.base), "world": str(wm.world),
            "data": str(wm.data),
            "link": str(link_path) if link_path else None, "training": wm.training}
    if json_out:
        print_json(info)
    else:
        t = wm.training
        typer.echo(f"model:       {wm.model}\nworld model: {wm.world}\nbase model:  {wm.base}\n"
                   f"data:        {wm.data}")
        typer.echo(f"trained in {t['seconds']:.0f} s ({t['world']['params']:,} parameters; loss "
                   f"{t['world']['loss_first']:.2f} -> {t['world']['loss_last']:.2f})")
    raise typer.Exit(EXIT_OK)
