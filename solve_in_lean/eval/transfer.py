"""Transfer experiments: train on a task mixture, evaluate on every task, compare with the base model.

The question (InternLM-Math): does training on formal tasks help informal reasoning, and back?
For each mixture of training tasks (weights in a TOML config, docs/evaluation.md), the base
model is fine-tuned on examples drawn by weight, then every evaluation task runs on the
trained model. The transfer matrix has one row per mixture and one column per task metric,
each cell the metric minus the base model's. Everything is kept and resumable:

    OUT/base-model/           the tiny random model, when the config asks for it
    OUT/data/MIXTURE.jsonl    the training examples of a mixture
    OUT/augment/NAME.jsonl    new problems the `augment` task made from a training split (and their log)
    OUT/models/MIXTURE/       the fine-tuned weights, train.json (config, loss curve)
    OUT/runs/ROW/EVAL/        evaluation run directories (`lean-solve report` reads them)
    OUT/transfer.json         the matrix, absolute values, and where each number came from
    OUT/heatmap.png, OUT/losses.png
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

from solve_in_lean.errors import InputError
from solve_in_lean.eval.finetune import TrainConfig, finetune
from solve_in_lean.eval.tasks import NEEDS_LEAN, TASKS, TaskContext, TaskOptions, metric_names
from solve_in_lean.eval.trainingdata import TRAIN_TASKS, augmented_examples, examples_from, mix, write_examples
from solve_in_lean.models.base import Completion, Generator, Prompt, SamplingParams
from solve_in_lean.presets import preset_of
from solve_in_lean.settings import ConfigError, Settings, make_checker, read_toml, settings_from_tables

BASE = "base"


@dataclass
class EvalEntry:
    """One evaluation column group: a task on a data file."""

    name: str
    task: str
    data: Path
    format: str = "auto"
    split: str | None = None
    limit: int | None = None
    options: TaskOptions = field(default_factory=TaskOptions)
    metric: str | None = None
    """The metric shown in the matrix (default: the task's main metric)."""


@dataclass
class Mixture:
    name: str
    weights: dict[str, float]


@dataclass
class TransferConfig:
    path: Path
    out: Path
    seed: int
    settings: Settings
    """The experiment's [lean], [model] and [solve] tables, read as every command reads them."""
    tiny_model: bool
    header: str
    train: TrainConfig
    examples: int
    """Training examples per mixture, drawn from the task pools by weight."""
    workers: int
    """Evaluation items in flight at once (run.execute)."""
    data: dict[str, list[Path]]
    evals: list[EvalEntry]
    mixtures: list[Mixture]
    augment_k: int = 2
    """Variants per source problem the `augment` training task asks the numbers mode for ([augment] k)."""


def _task_name(name: str) -> str:
    return name.replace("_", "-")


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}] must be a table")
    return value


EVAL_KEYS = {"name", "task", "data", "format", "split", "limit", "metric", "k"}


def _eval_entry(raw: dict[str, Any], base: Path, solve: Any, where: str) -> EvalEntry:
    """One [[eval]] table; its solve option keys (samples, rounds, ...) override the [solve] table."""
    option_keys = set(solve.to_dict()) - {"timeout_s"}
    if bad := sorted(set(raw) - EVAL_KEYS - option_keys):
        raise ConfigError(f"{where}: unknown key(s) {bad}; known: {sorted(EVAL_KEYS | option_keys)} "
                          "(the Lean timeout is set once, as [lean] timeout_s)")
    if "task" not in raw or "data" not in raw:
        raise ConfigError(f"{where}: every [[eval]] needs a task and a data file")
    task = _task_name(raw["task"])
    if task not in TASKS:
        raise ConfigError(f"{where}: unknown task {raw['task']!r}; choose one of: {', '.join(TASKS)}")
    try:
        ks = tuple(raw.get("k", [1])) if task == "prove" else (1,)
        options = TaskOptions(solve.replace(**{k: v for k, v in raw.items() if k in option_keys}), ks)
    except (TypeError, InputError) as e:
        raise ConfigError(f"{where}: {e}") from None
    if task == "cot" and options.solve.cot_samples < 1:
        raise ConfigError(f"{where}: the cot task needs cot_samples of at least 1")
    metric = raw.get("metric")
    if metric is not None and metric not in metric_names(task, options):
        raise ConfigError(f"{where}: {task} has no metric {metric!r}; it has {metric_names(task, options)}")
    return EvalEntry(raw.get("name", task), task, base / raw["data"], raw.get("format", "auto"), raw.get("split"),
                     raw.get("limit"), options, metric)


def read_experiment(path: Path, known: set[str]) -> tuple[dict[str, Any], Settings, TrainConfig]:
    """An experiment file's table, its settings ([lean] [model] [solve] [ray]) and its [train]
    table, checked; shared by transfer and iterate configs so a key means the same in both."""
    data = read_toml(path)
    if bad := sorted(set(data) - known):
        raise ConfigError(f"{path}: unknown key(s) {bad}; known: {sorted(known)}")
    settings = settings_from_tables(data, path=path, root=path.parent)
    try:
        train_raw = _table(data, "train", str(path))
        if bad := sorted(set(train_raw) - {f.name for f in fields(TrainConfig)}):
            raise ConfigError(f"{path}: unknown [train] key(s) {bad}")
        train = TrainConfig(**{**train_raw, "seed": train_raw.get("seed", data.get("seed", 0))})
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path}: [train] {e}") from None
    return data, settings, train


def load_config(path: str | Path, *, out: str | Path | None = None) -> TransferConfig:
    """Read and check an experiment config; relative paths are relative to the config file."""
    path = Path(path)
    data, settings, train = read_experiment(path, {"out", "seed", "tiny_model", "examples", "workers", "model",
                                                   "lean", "solve", "train", "data", "eval", "mixtures", "ray",
                                                   "augment"})
    base = path.parent
    if settings.lean.header is not None:
        header = settings.lean.header.read_text(encoding="utf-8")
    else:
        from autoformalize.formalize import DEFAULT_HEADER

        header = DEFAULT_HEADER
    sources: dict[str, list[Path]] = {}
    for task, value in _table(data, "data", str(path)).items():
        if _task_name(task) not in TRAIN_TASKS:
            raise ConfigError(f"{path}: [data] {task!r} is not a training task ({', '.join(TRAIN_TASKS)})")
        sources[_task_name(task)] = [base / v for v in ([value] if isinstance(value, str) else value)]
    evals = [_eval_entry(e, base, settings.solve, f"{path} [[eval]] {i + 1}") for i, e in enumerate(data.get("eval", []))]
    mixtures = []
    for i, m in enumerate(data.get("mixtures", [])):
        weights = {_task_name(t): float(w) for t, w in m.get("weights", {}).items()}
        if not m.get("name") or not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ConfigError(f"{path} [[mixtures]] {i + 1}: needs a name and non-negative weights summing above 0")
        if missing := sorted(t for t, w in weights.items() if w > 0 and t not in sources):
            raise ConfigError(f"{path}: mixture {m['name']!r} weights {missing} but [data] names no file for it")
        mixtures.append(Mixture(str(m["name"]), weights))
    if not evals or not mixtures:
        raise ConfigError(f"{path}: needs at least one [[eval]] and one [[mixtures]] entry")
    names = [e.name for e in evals]
    if len(set(names)) != len(names) or len({m.name for m in mixtures} | {BASE}) != len(mixtures) + 1:
        raise ConfigError(f"{path}: eval names and mixture names must be unique (and no mixture called {BASE!r})")
    if bad := [n for n in names if ":" in n]:
        raise ConfigError(f"{path}: eval names may not contain ':' (it separates name and metric): {bad}")
    if not data.get("tiny_model") and "model" not in _table(data, "model", str(path)):
        raise ConfigError(f"{path}: [model] needs `model` (a hub name or folder), or set tiny_model = true")
    augment = _table(data, "augment", str(path))
    if set(augment) - {"k"} or not isinstance(augment.get("k", 2), int) or augment.get("k", 2) < 1:
        raise ConfigError(f"{path}: [augment] takes one key, k (variants per source problem, at least 1)")
    out_dir = Path(out) if out else (base / data["out"] if "out" in data else Path("runs") / path.stem)
    return TransferConfig(path, out_dir, int(data.get("seed", 0)), settings, bool(data.get("tiny_model", False)),
                          header, train, int(data.get("examples", 256)), max(1, int(data.get("workers", 1))),
                          sources, evals, mixtures, int(augment.get("k", 2)))


@dataclass
class TransferResult:
    out: Path
    rows: list[str]
    columns: list[str]
    values: dict[str, dict[str, float | None]]
    """Absolute metric value per row (base first) and column."""
    runs: dict[str, dict[str, str]]
    training: dict[str, dict[str, Any]]
    p_values: dict[str, dict[str, float]] = field(default_factory=dict)
    """Paired test of each mixture against the base model on the same items (report.compare)."""
    alpha: float = 0.05

    def delta(self, row: str, column: str) -> float | None:
        v, b = self.values[row][column], self.values[BASE][column]
        return None if v is None or b is None else v - b

    @property
    def json_path(self) -> Path:
        return self.out / "transfer.json"

    @property
    def heatmap_path(self) -> Path:
        return self.out / "heatmap.png"

    def significant(self, row: str, column: str) -> bool:
        return self.p_values.get(row, {}).get(column, 1.0) < self.alpha

    def cell(self, row: str, column: str) -> str:
        """`+0.120*`: the change from the base model, starred when the paired test finds it significant."""
        d = self.delta(row, column)
        return "-" if d is None else f"{d:+.3f}{'*' if self.significant(row, column) else ''}"

    def table(self) -> str:
        """Rows: mixtures; cells: change from the base model (absolute value in parentheses)."""
        from solve_in_lean.eval.report import format_number, text_table

        rows = [["mixture", *self.columns],
                [f"{BASE} (absolute)", *(format_number(self.values[BASE][c]) for c in self.columns)]]
        for r in self.rows[1:]:
            rows.append([r, *(f"{self.cell(r, c)} ({format_number(self.values[r][c])})" for c in self.columns)])
        return text_table(rows) + (f"\n(change from the base model, absolute value in parentheses; * paired test "
                                   f"p < {self.alpha} on the same items)")

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "rows": self.rows, "columns": self.columns, "values": self.values,
                "delta": {r: {c: self.delta(r, c) for c in self.columns} for r in self.rows[1:]},
                "p_values": self.p_values, "runs": self.runs, "training": self.training,
                "heatmap": str(self.heatmap_path)}


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def base_model(cfg: Any, log: Callable[[str], None]) -> str:
    """The experiment's starting model: the configured one, or (`tiny_model`) a tiny random model
    built once in the run directory. `cfg` is a transfer or an iterate config."""
    if not cfg.tiny_model:
        return cfg.settings.model.model
    from solve_in_lean.models.tiny import build_tiny_model

    path = cfg.out / "base-model"
    if not (path / "config.json").is_file():
        log(f"building the tiny random model in {path} (a pipeline check: its numbers mean nothing)")
        build_tiny_model(path)
    return str(path)


def _train(cfg: TransferConfig, mixture: Mixture, base: str, pools: dict[str, list[dict[str, Any]]],
           progress: bool | None, log: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
    """The mixture's fine-tuned model, trained now or found from an earlier run with the same settings."""
    examples = mix(pools, mixture.weights, cfg.examples, cfg.seed)
    key = _hash({"base": base, "train": cfg.train.to_dict(), "examples": examples})
    out = cfg.out / "models" / mixture.name
    info_path = out / "train.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text(encoding="utf-8"))
        if info.get("key") != key:
            raise ConfigError(f"{out} was trained with other settings or data; delete it or choose another --out")
        log(f"{mixture.name}: using the model trained earlier in {out}")
        return str(out), info["result"]
    write_examples(examples, cfg.out / "data" / f"{mixture.name}.jsonl")
    counts = {t: sum(e["task"] == t for e in examples) for t in mixture.weights}
    log(f"{mixture.name}: training on {len(examples)} examples {counts} ({cfg.train.method})")
    result = finetune(base, examples, out, cfg.train, progress=progress, description=f"training {mixture.name}")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info.update(key=key, counts=counts)
    info_path.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    log(f"{mixture.name}: {result.steps} steps in {result.seconds:.1f} s, loss {result.losses[0]:.3f} -> "
        f"{result.losses[-1]:.3f}")
    return str(out), info["result"]


class _LazyGenerator(Generator):
    """Loads the model at the first call, so a row whose runs are all finished never loads it."""

    def __init__(self, factory: Callable[[], Generator], backend: str, model: str) -> None:
        self.factory, self.backend, self.model = factory, backend, model
        self.inner: Generator | None = None

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        if self.inner is None:
            self.inner = self.factory()
        return self.inner.generate(prompts, params)

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()
            self.inner = None


def _evaluate_row(cfg: TransferConfig, row: str, model_path: str, selections: list[Any], checker: Any,
                  progress: bool | None, log: Callable[[str], None]) -> tuple[dict[str, float | None], dict[str, str]]:
    from solve_in_lean.eval.run import evaluate
    from solve_in_lean.models import generator_from_config
    from solve_in_lean.options import SamplingRule

    mcfg = cfg.settings.model_config(cache_by_default=False).with_overrides(model=model_path, seed=cfg.seed)
    auto = cfg.settings.auto_temperature
    values, runs = {}, {}
    lazy = _LazyGenerator(lambda: generator_from_config(mcfg), mcfg.backend, mcfg.model)
    with SamplingRule(lazy, auto_temperature=auto) as generator:
        for entry, selection in zip(cfg.evals, selections):
            ctx = TaskContext(generator, checker if entry.task in NEEDS_LEAN else None, mcfg.sampling, entry.options,
                              cfg.header, cfg.settings.lean.policy(), auto_temperature=auto,
                              preset=preset_of(cfg.settings))
            run_dir = cfg.out / "runs" / row / entry.name
            _, _, metrics = evaluate(run_dir, selection, ctx, model=mcfg.to_dict(), progress=progress,
                                     workers=cfg.workers)
            metric = entry.metric or metrics["main"]
            values[f"{entry.name}:{metric}"] = metrics["metrics"][metric]["value"]
            runs[f"{entry.name}:{metric}"] = str(run_dir)
            log(f"{row}: {entry.name} {metric} = {values[f'{entry.name}:{metric}']}")
    return values, runs


def _check_headers(selections: list[Any], cfg: TransferConfig, checker: Any) -> None:
    """Refuse to start when a header cannot elaborate: every Lean metric would be zero for it."""
    from solve_in_lean.eval.run import lean_headers

    for header in dict.fromkeys(h for s in selections for h in lean_headers(s, cfg.header)):
        res = checker.check("", header=header, timeout_s=cfg.settings.solve.timeout_s)
        if not res.ok:
            why = res.errors[0].text.split("\n")[0] if res.errors else (res.detail or res.status)
            raise ConfigError(f"a Lean header of the evaluation does not elaborate with the {checker.name} backend "
                              f"({why}); set [lean] header to a file that does, or use a backend with Mathlib")


def row_names(cfg: TransferConfig) -> list[str]:
    return [BASE, *(m.name for m in cfg.mixtures)]


def run_rows(cfg: TransferConfig, rows: list[str], *, progress: bool | None = None,
             log: Callable[[str], None] | None = None) -> dict[str, dict[str, Any]]:
    """Train (mixtures) and evaluate the given rows: per row, its metric values, run directories
    and training summary. Finished work is reused, so rows can run in separate processes (on a
    GPU, vLLM does not reliably free its memory within one) and be assembled later."""
    from solve_in_lean.eval.run import select_items

    if unknown := sorted(set(rows) - set(row_names(cfg))):
        raise ConfigError(f"no row named {', '.join(map(repr, unknown))}; rows: {', '.join(row_names(cfg))}")
    log = log or (lambda _msg: None)
    cfg.out.mkdir(parents=True, exist_ok=True)
    selections = [select_items(e.task, e.data, fmt=e.format, split=e.split, limit=e.limit, seed=cfg.seed)
                  for e in cfg.evals]
    mixtures = [m for m in cfg.mixtures if m.name in rows]
    needs_lean = (any(e.task in NEEDS_LEAN for e in cfg.evals)
                  or any(t in ("lean-solve", "prove", "augment") and w > 0 for m in mixtures
                         for t, w in m.weights.items()))
    checker = None
    if needs_lean:
        checker = make_checker(cfg.settings)
    out: dict[str, dict[str, Any]] = {}
    try:
        _check_headers(selections, cfg, checker)
        base = base_model(cfg, log)
        if BASE in rows:
            values, runs = _evaluate_row(cfg, BASE, base, selections, checker, progress, log)
            out[BASE] = {"values": values, "runs": runs, "training": None}
        pools = _pools(cfg, mixtures, selections, checker, log) if mixtures else {}
        for mixture in mixtures:
            path, training = _train(cfg, mixture, base, pools, progress, log)
            values, runs = _evaluate_row(cfg, mixture.name, path, selections, checker, progress, log)
            out[mixture.name] = {"values": values, "runs": runs, "training": training}
    finally:
        if checker is not None:
            checker.close()
    return out


def _pools(cfg: TransferConfig, mixtures: list[Mixture], selections: list[Any], checker: Any,
           log: Callable[[str], None]) -> dict[str, list[dict[str, Any]]]:
    """Training examples per task the mixtures use, with every evaluation item left out (and, for
    `augment`, every new problem that repeats an evaluation item's question or statement)."""
    held_out = {(s.sha256, it["id"]) for s in selections for it in s.items}
    used = {t for m in mixtures for t, w in m.weights.items() if w > 0}
    pools = {t: [e for p in paths for e in examples_from(t, p, checker=checker, header=cfg.header)
                 if (e["source"]["data_sha256"], e["source"]["id"]) not in held_out]
             for t, paths in cfg.data.items() if t in used and t != "augment"}
    if "augment" in used:
        pools["augment"] = []
        for p in cfg.data["augment"]:
            examples, summary = augmented_examples(
                p, checker, header=cfg.header, output=cfg.out / "augment" / f"{p.stem}.jsonl",
                exclude=[it for s in selections for it in s.items], held_out=held_out, k=cfg.augment_k,
                seed=cfg.seed, policy=cfg.settings.lean.policy())
            pools["augment"] += examples
            log(f"augment: {summary.kept} Lean-certified new problems from {summary.sources} problems of {p.name} "
                f"(dropped {sum(summary.dropped.values())}, skipped {sum(summary.skipped.values())})")
    log("training examples per task (evaluation items left out): "
        + ", ".join(f"{t} {len(p)}" for t, p in pools.items()))
    return pools


def run_transfer(cfg: TransferConfig, *, progress: bool | None = None,
                 log: Callable[[str], None] | None = None) -> TransferResult:
    """Evaluate the base model, then train and evaluate each mixture; write the matrix and plots."""
    rows = run_rows(cfg, row_names(cfg), progress=progress, log=log)
    columns = list(rows[BASE]["values"])
    runs = {r: d["runs"] for r, d in rows.items()}
    training = {r: d["training"] for r, d in rows.items() if r != BASE}
    result = TransferResult(cfg.out, row_names(cfg), columns, {r: d["values"] for r, d in rows.items()}, runs,
                            training, _p_values(runs, columns))
    result.json_path.write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
    plot_heatmap(result, result.heatmap_path)
    plot_losses(training, cfg.out / "losses.png")
    return result


def _p_values(runs: dict[str, dict[str, str]], columns: list[str]) -> dict[str, dict[str, float]]:
    """Each mixture against the base model, per column, paired on the items both runs finished."""
    from solve_in_lean.eval.report import compare
    from solve_in_lean.eval.run import load_run

    out: dict[str, dict[str, float]] = {}
    for row in runs:
        if row != BASE:
            out[row] = {c: compare(load_run(runs[BASE][c]), load_run(runs[row][c]))[c.split(":", 1)[1]].p_value
                        for c in columns}
    return out


def plot_heatmap(result: TransferResult, path: Path) -> Path:
    """Change from the base model per mixture (rows) and task metric (columns), annotated."""
    import math

    from matplotlib.figure import Figure

    mixtures = result.rows[1:]
    grid = [[(d if (d := result.delta(r, c)) is not None else math.nan) for c in result.columns] for r in mixtures]
    finite = [abs(v) for row in grid for v in row if not math.isnan(v)]
    scale = max(finite + [0.05])
    fig = Figure(figsize=(1.9 * len(result.columns) + 2.5, 0.8 * len(mixtures) + 2.2), dpi=100, layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(grid, cmap="RdBu", vmin=-scale, vmax=scale, aspect="auto")
    labels = [f"{c.replace(':', chr(10))}\nbase {result.values[BASE][c]:.2f}" if result.values[BASE][c] is not None
              else f"{c.replace(':', chr(10))}\nbase -" for c in result.columns]
    ax.set_xticks(range(len(result.columns)), labels, fontsize="small")
    ax.set_yticks(range(len(mixtures)), mixtures)
    for i, r in enumerate(mixtures):
        for j, c in enumerate(result.columns):
            ax.text(j, i, result.cell(r, c), ha="center", va="center", fontsize="small")
    fig.colorbar(image, ax=ax, label="change from the base model")
    ax.set_title(f"transfer: training mixture (rows) -> task metric (columns); * p < {result.alpha}, paired")
    fig.savefig(path)
    return path


def plot_losses(training: dict[str, dict[str, Any]], path: Path) -> Path:
    """Training loss per optimizer step, one curve per mixture."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.5), dpi=100, layout="constrained")
    ax = fig.subplots()
    for name, info in training.items():
        ax.plot(range(1, len(info["losses"]) + 1), info["losses"], label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend(fontsize="small")
    fig.savefig(path)
    return path
