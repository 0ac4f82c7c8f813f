"""Self-iteration: rounds of solve -> verified data -> fine-tune -> re-evaluate, transfer tracked per round.

InternLM-Math names self-iteration as what its abilities are for; expert iteration (StepProver,
Goedel-Prover, DeepSeek-Prover) does it for proving. Here every round runs the current model over
the training pools (any of cot, lean-solve, formalize, prove), keeps only what was *verified*
(Lean-verified programs and proofs, chain-of-thought answers equal to the reference, statements
that elaborate and that the judge found faithful), fine-tunes, and evaluates every task. Round 0
is the base model. The config and its keys: docs/evaluation.md ("Self-iteration").

    OUT.lock                          one writer at a time (runlock.RunLock, beside OUT)
    OUT/fingerprint.json              what the rounds depend on; a rerun with other settings is refused
    OUT/round-R/pool/NAME/            the round's runs over the training pools (eval run directories)
    OUT/round-R/data.jsonl            the round's new verified examples (deduplicated across rounds)
    OUT/round-R/collect.json          their counts per task, what was dropped and why, their hash
    OUT/round-R/train.jsonl           the training set drawn from the data by the mixture weights
    OUT/round-R/model/                the fine-tuned weights (train.json: config, loss curve)
    OUT/round-R/training.json         the model the round evaluates, or why training was skipped
    OUT/round-R/eval/NAME/            the evaluation runs (`lean-solve report` reads them)
    OUT/round-R/round.json            the round's row: values, change and paired test vs round R-1
    OUT/iterate.json, rounds.png, heatmaps.png    the whole matrix and its plots

Every stage writes its result whole (temporary file, then rename) and is skipped when a rerun
finds it, and the evaluation runs resume item by item, so a killed iteration continues where it
stopped. Evaluation items never enter training: pool items with an evaluation item's id, or whose
question or statement has the same normalized text, are left out before the model sees them, and
every collected example is checked again against its source item.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from solve_in_lean.eval.finetune import TrainConfig, TrainResult, finetune
from solve_in_lean.eval.tasks import NEEDS_LEAN, TaskContext
from solve_in_lean.eval.trainingdata import TRAIN_TASKS, chat_example, mix, record_examples
from solve_in_lean.eval.transfer import (EvalEntry, _check_headers, _eval_entry, _hash, _LazyGenerator, _table,
                                         _task_name, base_model, read_experiment)
from solve_in_lean.models.base import Generator
from solve_in_lean.presets import preset_of
from solve_in_lean.settings import ConfigError, Settings, make_checker

POOL_TASKS = ("cot", "lean-solve", "formalize", "prove")
"""Tasks whose output can be verified and so become training data."""
YIELDS = {"cot": ("cot",), "lean-solve": ("lean-solve",), "formalize": ("formalize", "backtranslate"),
          "prove": ("prove",)}
"""The training tasks each pool task's verified output teaches."""
INITS = ("base", "previous")
NOT_FINGERPRINTED = {"rounds", "stop_when_empty", "workers", "ray"}
"""Keys that may change between reruns: more rounds continue the iteration; where Lean runs (Ray
or not) changes no verdict."""
ITERATION = "iterate.json"

GeneratorFor = Callable[[str, int], Generator]
"""(model folder, seed) -> the generator that runs it."""


@dataclass
class IterateConfig:
    path: Path
    out: Path
    seed: int
    rounds: int
    init: str
    """Each round fine-tunes the base model on every round's data ("base"), or the previous round's
    model on the new data ("previous")."""
    examples: int
    """Training examples per round drawn by the mixture weights; 0: every example once."""
    stop_when_empty: bool
    settings: Settings
    tiny_model: bool
    header: str
    train: TrainConfig
    workers: int
    weights: dict[str, float]
    pools: list[EvalEntry]
    evals: list[EvalEntry]
    fingerprint: str = ""


def load_config(path: str | Path, *, out: str | Path | None = None) -> IterateConfig:
    """Read and check an iteration config; relative paths are relative to the config file."""
    path = Path(path)
    data, settings, train = read_experiment(path, {"out", "seed", "rounds", "init", "examples", "stop_when_empty",
                                                   "tiny_model", "workers", "model", "lean", "solve", "train",
                                                   "mixture", "pool", "eval", "ray"})
    base = path.parent
    rounds, examples = data.get("rounds", 1), data.get("examples", 0)
    for key, value, low in (("rounds", rounds, 1), ("examples", examples, 0), ("seed", data.get("seed", 0), 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{path}: {key} must be a whole number of at least {low}, not {value!r}")
    if data.get("init", "base") not in INITS:
        raise ConfigError(f"{path}: init must be one of {', '.join(INITS)}, not {data.get('init')!r}")
    pools = [_eval_entry(p, base, settings.solve, f"{path} [[pool]] {i + 1}") for i, p in enumerate(data.get("pool", []))]
    if bad := sorted({p.task for p in pools} - set(POOL_TASKS)):
        raise ConfigError(f"{path}: [[pool]] task(s) {bad} yield nothing verifiable; use {', '.join(POOL_TASKS)}")
    evals = [_eval_entry(e, base, settings.solve, f"{path} [[eval]] {i + 1}") for i, e in enumerate(data.get("eval", []))]
    if not pools or not evals:
        raise ConfigError(f"{path}: needs at least one [[pool]] and one [[eval]] entry")
    for label, entries in (("pool", pools), ("eval", evals)):
        if len({e.name for e in entries}) != len(entries):
            raise ConfigError(f"{path}: [[{label}]] names must be unique (set `name` where a task repeats)")
    produced = {t for p in pools for t in YIELDS[p.task]}
    weights = {_task_name(t): w for t, w in _table(data, "mixture", str(path)).items()}
    if bad := sorted(set(weights) - set(TRAIN_TASKS)):
        raise ConfigError(f"{path}: [mixture] {bad} are not training tasks ({', '.join(TRAIN_TASKS)})")
    if any(isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0 for w in weights.values()):
        raise ConfigError(f"{path}: [mixture] weights must be non-negative numbers")
    weights = {t: float(w) for t, w in weights.items()} or {t: 1.0 for t in sorted(produced)}
    if not any(w > 0 and t in produced for t, w in weights.items()):
        raise ConfigError(f"{path}: [mixture] gives no weight to a task the pools yield ({', '.join(sorted(produced))})")
    if not data.get("tiny_model") and not settings.model.model:
        raise ConfigError(f"{path}: [model] needs `model` (a hub name or folder), or set tiny_model = true")
    if settings.lean.header is not None:
        header = settings.lean.header.read_text(encoding="utf-8")
    else:
        from autoformalize.formalize import DEFAULT_HEADER

        header = DEFAULT_HEADER
    out_dir = Path(out) if out else (base / data["out"] if "out" in data else Path("runs") / path.stem)
    fingerprint = _hash({"config": {k: v for k, v in data.items() if k not in NOT_FINGERPRINTED | {"out"}},
                         "header": header, "files": {str(e.data): _file_hash(e.data) for e in pools + evals}})
    return IterateConfig(path, out_dir, int(data.get("seed", 0)), rounds, data.get("init", "base"), examples,
                         bool(data.get("stop_when_empty", False)), settings, bool(data.get("tiny_model", False)),
                         header, train, max(1, int(data.get("workers", 1))), weights, pools, evals, fingerprint)


def _file_hash(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _write(path: Path, text: str) -> None:
    """Whole or not at all: a kill mid-write leaves the old file or none."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_json(path: Path, obj: Any) -> None:
    _write(path, json.dumps(obj, indent=1, ensure_ascii=False, default=str) + "\n")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _jsonl(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------
# Keeping evaluation items out
# ---------------------------------------------------------------------------------------------
def text_key(text: str) -> str:
    """A text's hash after Unicode normalization, case folding and whitespace collapsing: a copy
    that differs only in spacing or case is the same item."""
    return hashlib.sha256(" ".join(unicodedata.normalize("NFKC", text).casefold().split()).encode()).hexdigest()


def _texts(item: dict[str, Any]) -> list[str]:
    formal = item.get("formal") or {}
    return [t for t in (item.get("question"), formal.get("statement")) if isinstance(t, str) and t.strip()]


@dataclass
class HeldOut:
    """Every evaluation item, by id and by the normalized text of its question and statement."""

    ids: set[str] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, selections: Iterable[Any]) -> "HeldOut":
        items = [it for s in selections for it in s.items]
        return cls({str(it["id"]) for it in items}, {text_key(t) for it in items for t in _texts(it)})

    def excludes(self, item: dict[str, Any]) -> bool:
        return str(item["id"]) in self.ids or any(text_key(t) in self.keys for t in _texts(item))


# ---------------------------------------------------------------------------------------------
# Collecting verified examples from a round's pool runs
# ---------------------------------------------------------------------------------------------
def verified_examples(task: str, records: list[dict[str, Any]], sha: str) -> list[dict[str, Any]]:
    """The training examples that the verified records of one pool run teach (module doc)."""
    from solve_in_lean.answers import equivalent

    done = [r for r in records if "error" not in r]
    if task == "lean-solve":
        return record_examples("lean-solve", [r for r in done if r.get("scores", {}).get("verified_rate")], sha)
    if task == "prove":
        return record_examples("prove", [r for r in done if r.get("correct") and r.get("proof")], sha)
    if task == "formalize":
        faithful = [r for r in done if r.get("scores", {}).get("faithful_rate")]
        return record_examples("formalize", faithful, sha) + record_examples("backtranslate", faithful, sha)
    out = []
    for r in done:  # cot: a chain of thought whose answer equals the reference
        right = [s for s, a in zip(r.get("samples", []), r.get("sample_answers", []))
                 if a is not None and equivalent(a, r["reference"])]
        if r.get("scores", {}).get("accuracy") and right:
            out.append(chat_example("cot", {"problem": r["item"]["question"]}, right[0].strip(),
                                    {"data_sha256": sha, "id": str(r["id"])}))
    return out


def example_key(example: dict[str, Any]) -> str:
    """Two examples with the same task and the same turns (up to spacing and case) are one."""
    return _hash([example["task"], [text_key(m["content"]) for m in example["messages"]]])


def collect(pool_runs: list[tuple[str, Any]], held: HeldOut, seen: set[str]) -> tuple[list[dict[str, Any]],
                                                                                        dict[str, Any]]:
    """The new verified examples of a round's pool runs ((task, Run) pairs): each checked again
    against the evaluation items through its source item, and none already in `seen` (earlier
    rounds) or twice. Returns (examples, counts of what was kept and dropped)."""
    kept: list[dict[str, Any]] = []
    stats = {"verified": 0, "held_out": 0, "duplicates": 0}
    keys = set(seen)
    for task, run in pool_runs:
        records = run.records()
        items = {str(r["id"]): r.get("item") for r in records}
        for ex in verified_examples(task, records, run.config["data_sha256"]):
            stats["verified"] += 1
            item = items.get(str(ex["source"]["id"]))
            if item is None or held.excludes(item):  # fail closed: no source item, no example
                stats["held_out"] += 1
                continue
            key = example_key(ex)
            if key in keys:
                stats["duplicates"] += 1
                continue
            keys.add(key)
            kept.append({**ex, "key": key, "pool": run.name})
    stats["per_task"] = {t: sum(e["task"] == t for e in kept) for t in TRAIN_TASKS if any(e["task"] == t for e in kept)}
    return kept, stats


# ---------------------------------------------------------------------------------------------
# The rounds
# ---------------------------------------------------------------------------------------------
def round_dir(cfg: IterateConfig, r: int) -> Path:
    return cfg.out / f"round-{r}"


def _default_generator_for(cfg: IterateConfig) -> GeneratorFor:
    def make(model: str, seed: int) -> Generator:
        from solve_in_lean.models import generator_from_config

        mcfg = cfg.settings.model_config(cache_by_default=False).with_overrides(model=model, seed=seed)
        return _LazyGenerator(lambda: generator_from_config(mcfg), mcfg.backend, mcfg.model)
    return make


class Paused(Exception):
    """One model per process (`one_model`): the next stage needs another model."""


@dataclass
class _Models:
    one: bool
    """Stop before a second model would be loaded: vLLM does not reliably free GPU memory within a process."""
    loaded: str | None = None

    def use(self, model: str, where: Path, selections: list[Any], names: list[str]) -> None:
        from solve_in_lean.eval.run import RECORDS

        pending = any(not (where / n / RECORDS).is_file() or len(_read_jsonl(where / n / RECORDS)) < len(s.items)
                      for n, s in zip(names, selections))
        if not pending:
            return
        if self.one and self.loaded not in (None, model):
            raise Paused(model)
        self.loaded = model


def _run_all(cfg: IterateConfig, entries: list[EvalEntry], selections: list[Any], where: Path, model: str,
             seed: int, generator_for: GeneratorFor, checker: Any, progress: bool | None, models: _Models) -> list[Any]:
    """Each entry's run (eval.run.evaluate, resumed item by item) with the model in `model`."""
    from solve_in_lean.eval.run import evaluate
    from solve_in_lean.options import SamplingRule

    models.use(model, where, selections, [e.name for e in entries])
    mcfg = cfg.settings.model_config(cache_by_default=False).with_overrides(model=model, seed=seed)
    auto = cfg.settings.auto_temperature
    runs = []
    with SamplingRule(generator_for(model, seed), auto_temperature=auto) as generator:
        for entry, selection in zip(entries, selections):
            ctx = TaskContext(generator, checker if entry.task in NEEDS_LEAN else None, mcfg.sampling, entry.options,
                              cfg.header, cfg.settings.lean.policy(), auto_temperature=auto,
                              preset=preset_of(cfg.settings))
            run, _, _ = evaluate(where / entry.name, selection, ctx, model=mcfg.to_dict(), progress=progress,
                                 workers=cfg.workers)
            runs.append(run)
    return runs


def _training_set(cfg: IterateConfig, r: int, new: list[dict[str, Any]],
                  duplicates: int) -> tuple[list[dict[str, Any]], str | None]:
    """What round `r` trains on, or why it trains on nothing."""
    if not new:
        return [], ("no new verified data in this round" + (f" ({duplicates} verified examples repeat earlier ones)"
                                                             if duplicates else ""))
    pool = new
    if cfg.init == "base":
        pool = [e for q in range(1, r) for e in _read_jsonl(round_dir(cfg, q) / "data.jsonl")] + new
    weights = {t: w for t, w in cfg.weights.items() if w > 0 and any(e["task"] == t for e in pool)}
    if not weights:
        return [], f"the verified data ({', '.join(sorted({e['task'] for e in pool}))}) has no task the mixture weights"
    by_task = {t: [e for e in pool if e["task"] == t] for t in weights}
    if cfg.examples == 0:
        return [e for t in sorted(by_task) for e in by_task[t]], None
    return mix(by_task, weights, cfg.examples, cfg.seed + r), None


def _trained_earlier(rdir: Path, text: str) -> TrainResult | None:
    """The model a killed run finished training on exactly this set (saved whole by finetune) but
    had not yet recorded."""
    saved, data = rdir / "model" / "train.json", rdir / "train.jsonl"
    if not (saved.is_file() and data.is_file() and data.read_text(encoding="utf-8") == text):
        return None
    r = _read_json(saved)["result"]
    return TrainResult(Path(r["out_dir"]), r["steps"], r["examples"], r["losses"], r["seconds"], r["trainable_params"])


def _train_stage(cfg: IterateConfig, r: int, start: str, new: list[dict[str, Any]], duplicates: int, base: str,
                 progress: bool | None, log: Callable[[str], None]) -> dict[str, Any]:
    rdir = round_dir(cfg, r)
    path = rdir / "training.json"
    if path.is_file():
        return _read_json(path)
    examples, skipped = _training_set(cfg, r, new, duplicates)
    if skipped is not None:
        log(f"round {r}: training skipped: {skipped}")
        info: dict[str, Any] = {"model": start, "from": start, "skipped": skipped, "examples": 0}
    else:
        origin = base if cfg.init == "base" else start
        text = _jsonl(examples)
        counts = {t: sum(e["task"] == t for e in examples) for t in sorted({e["task"] for e in examples})}
        result = _trained_earlier(rdir, text)
        if result is None:
            _write(rdir / "train.jsonl", text)
            log(f"round {r}: train: {len(examples)} examples {counts} from {origin} ({cfg.train.method})")
            result = finetune(origin, examples, rdir / "model", dataclasses.replace(cfg.train, seed=cfg.train.seed + r),
                              progress=progress, description=f"training round {r}")
        log(f"round {r}: {result.steps} steps in {result.seconds:.1f} s, loss {result.losses[0]:.3f} -> "
            f"{result.losses[-1]:.3f}")
        info = {"model": str(rdir / "model"), "from": origin, "skipped": None, "examples": len(examples),
                "counts": counts, "train_sha256": hashlib.sha256(text.encode()).hexdigest(),
                "result": result.to_dict()}
    _write_json(path, info)
    return info


def _row(cfg: IterateConfig, r: int, runs: list[Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """The round's values per task metric, and the change and paired test against round r-1."""
    from solve_in_lean.eval.report import compare
    from solve_in_lean.eval.run import load_run

    values, run_dirs, p_values, delta = {}, {}, {}, {}
    for entry, run in zip(cfg.evals, runs):
        metrics = run.metrics()
        metric = entry.metric or metrics["main"]
        column = f"{entry.name}:{metric}"
        values[column], run_dirs[column] = metrics["metrics"][metric]["value"], str(run.dir)
        if previous is not None:
            old = previous["values"][column]
            delta[column] = None if old is None or values[column] is None else values[column] - old
            p_values[column] = compare(load_run(previous["runs"][column]), run)[metric].p_value
    return {"round": r, "values": values, "runs": run_dirs, "delta": delta, "p_values": p_values}


def run_iteration(cfg: IterateConfig, *, generator_for: GeneratorFor | None = None, progress: bool | None = None,
                  log: Callable[[str], None] | None = None, one_model: bool = False) -> "IterationResult":
    """Run (or resume) every round up to `cfg.rounds`, as the run directory's only writer.

    `generator_for` builds the generator of a model folder; by default the [model] settings with
    that folder. Writes OUT/iterate.json and the plots. `one_model`: stop (result.paused says
    where) before a second model would generate in this process; rerun to continue."""
    from solve_in_lean.runlock import RunLock

    cfg.out.mkdir(parents=True, exist_ok=True)
    with RunLock(cfg.out):
        _claim(cfg)
        return _rounds(cfg, generator_for or _default_generator_for(cfg), progress, log or (lambda _m: None),
                       _Models(one_model))


def _claim(cfg: IterateConfig) -> None:
    """Refuse a directory that holds another iteration (other pools, evals, model or training)."""
    path = cfg.out / "fingerprint.json"
    if path.is_file():
        if _read_json(path).get("fingerprint") != cfg.fingerprint:
            raise ConfigError(f"{cfg.out} holds an iteration with other settings or data (only rounds, "
                              "stop_when_empty and workers may change); choose another --out or delete it")
    elif any(cfg.out.iterdir()):
        raise ConfigError(f"{cfg.out} is not empty and holds no iteration; choose another --out")
    else:
        _write_json(path, {"fingerprint": cfg.fingerprint, "config": str(cfg.path)})


def _rounds(cfg: IterateConfig, generator_for: GeneratorFor, progress: bool | None,
            log: Callable[[str], None], models: _Models) -> "IterationResult":
    from solve_in_lean.eval.run import select_items

    evals = [select_items(e.task, e.data, fmt=e.format, split=e.split, limit=e.limit, seed=cfg.seed)
             for e in cfg.evals]
    held = HeldOut.of(evals)
    needs_lean = any(e.task in NEEDS_LEAN for e in cfg.evals + cfg.pools)
    checker = make_checker(cfg.settings) if needs_lean else None
    rows: list[dict[str, Any]] = []
    stopped = paused = None
    try:
        if checker is not None:
            _check_headers(evals, cfg, checker)  # type: ignore[arg-type]  (reads .header and .settings)
        base = base_model(cfg, log)
        model, seen = base, set()
        for r in range(cfg.rounds + 1):
            rdir = round_dir(cfg, r)
            done = rdir / "round.json"
            if done.is_file():
                row = _read_json(done)
                log(f"round {r}: done earlier ({rdir})")
            else:
                try:
                    row = _round(cfg, r, base, model, seen, held, evals, generator_for, checker, progress, log, models)
                except Paused as e:
                    paused = f"round {r} needs the model {e} next; run again to continue (one model per process)"
                    log(paused)
                    break
                row["previous"] = rows[-1]["round"] if rows else None
                _write_json(done, row)
                log(f"round {r}: " + ", ".join(f"{c} {_fmt(v)}" for c, v in row["values"].items()))
            rows.append(row)
            model = row["model"]
            seen |= {e["key"] for e in _read_jsonl(rdir / "data.jsonl")} if r else set()
            if row.get("stopped"):
                stopped = row["stopped"]
                break
    finally:
        if checker is not None:
            checker.close()
    result = IterationResult(cfg.out, rows, stopped, paused)
    _write_json(cfg.out / ITERATION, result.to_dict())
    plot_rounds(result, cfg.out / "rounds.png")
    plot_round_heatmaps(result, cfg.out / "heatmaps.png")
    return result


def _round(cfg: IterateConfig, r: int, base: str, model: str, seen: set[str], held: HeldOut, evals: list[Any],
           generator_for: GeneratorFor, checker: Any, progress: bool | None, log: Callable[[str], None],
           models: _Models) -> dict[str, Any]:
    """One round's stages, each skipped when its result is already on disk."""
    from solve_in_lean.eval.datasets import select
    from solve_in_lean.eval.run import select_items

    rdir = round_dir(cfg, r)
    rdir.mkdir(parents=True, exist_ok=True)
    training: dict[str, Any] = {"model": base, "from": None, "skipped": "round 0 is the base model", "examples": 0}
    collected: dict[str, Any] = {"examples": 0, "data_sha256": None}
    stopped = None
    if r:
        if not (rdir / "collect.json").is_file():
            log(f"round {r}: generate: the model of round {r - 1} on the training pools")
            selections = []
            for p in cfg.pools:  # evaluation items out first, then `limit` drawn from the rest
                s = select_items(p.task, p.data, fmt=p.format, split=p.split, seed=cfg.seed + r)
                eligible = [it for it in s.items if not held.excludes(it)]
                selections.append(dataclasses.replace(s, items=select(eligible, p.limit, cfg.seed + r), limit=p.limit))
                if left := len(s.items) - len(eligible):
                    log(f"round {r}: {p.name}: {left} pool items are evaluation items and were left out")
            runs = _run_all(cfg, cfg.pools, selections, rdir / "pool", model, cfg.seed + r, generator_for, checker,
                            progress, models)
            log(f"round {r}: collect: verified examples")
            new, stats = collect([(p.task, run) for p, run in zip(cfg.pools, runs)], held, seen)
            text = _jsonl(new)
            _write(rdir / "data.jsonl", text)
            _write_json(rdir / "collect.json", {**stats, "examples": len(new),
                                                "data_sha256": hashlib.sha256(text.encode()).hexdigest()})
        collected = _read_json(rdir / "collect.json")
        log(f"round {r}: {collected['examples']} new verified examples {collected['per_task']} "
            f"({collected['held_out']} held out, {collected['duplicates']} duplicates)")
        if not collected["examples"] and cfg.stop_when_empty:
            stopped = f"round {r} collected no verified data and the config asks to stop (stop_when_empty)"
            log(stopped)
            training = {"model": model, "from": model, "skipped": stopped, "examples": 0}
        else:
            training = _train_stage(cfg, r, model, _read_jsonl(rdir / "data.jsonl"), collected["duplicates"], base,
                                    progress, log)
    row = {"round": r, "model": training["model"], "training": training, "collected": collected, "stopped": stopped}
    if stopped:
        return {**row, "values": {}, "runs": {}, "delta": {}, "p_values": {}}
    log(f"round {r}: evaluate: {training['model']}")
    runs = _run_all(cfg, cfg.evals, evals, rdir / "eval", training["model"], cfg.seed, generator_for, checker,
                    progress, models)
    previous = _read_json(round_dir(cfg, r - 1) / "round.json") if r else None
    return {**row, **_row(cfg, r, runs, previous)}


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


# ---------------------------------------------------------------------------------------------
# The result: one row per round, and its plots
# ---------------------------------------------------------------------------------------------
@dataclass
class IterationResult:
    out: Path
    rows: list[dict[str, Any]]
    stopped: str | None = None
    paused: str | None = None
    alpha: float = 0.05

    @property
    def columns(self) -> list[str]:
        return list(self.rows[0]["values"]) if self.rows else []

    @property
    def evaluated(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["values"]]

    def cell(self, row: dict[str, Any], column: str) -> str:
        """`0.250 (+0.125*)`: the value, its change from the previous round, starred when significant."""
        value, delta = row["values"].get(column), row["delta"].get(column)
        if not row["round"] or column not in row["delta"]:
            return _fmt(value)
        star = "*" if row["p_values"].get(column, 1.0) < self.alpha else ""
        return f"{_fmt(value)} ({'-' if delta is None else f'{delta:+.3f}'}{star})"

    def table(self) -> str:
        from solve_in_lean.eval.report import text_table

        lines = [["round", "trained on", *self.columns]]
        for row in self.evaluated:
            t = row["training"]
            trained = "base model" if not row["round"] else (t["skipped"] and "skipped") or f"{t['examples']} examples"
            lines.append([str(row["round"]), trained, *(self.cell(row, c) for c in self.columns)])
        notes = [f"(value; change from the previous round in parentheses, * paired test p < {self.alpha})"]
        notes += [f"round {r['round']}: training skipped: {r['training']['skipped']}" for r in self.rows
                  if r["round"] and r["training"]["skipped"]]
        if self.stopped:
            notes.append(f"stopped: {self.stopped}")
        if self.paused:
            notes.append(f"paused: {self.paused}")
        return text_table(lines) + "\n" + "\n".join(notes)

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "columns": self.columns, "rounds": self.rows, "stopped": self.stopped,
                "paused": self.paused, "done": self.paused is None, "alpha": self.alpha,
                "plots": [str(self.out / "rounds.png"), str(self.out / "heatmaps.png")]}

    @classmethod
    def load(cls, out: str | Path) -> "IterationResult":
        data = _read_json(Path(out) / ITERATION)
        return cls(Path(out), data["rounds"], data.get("stopped"), data.get("paused"), data.get("alpha", 0.05))


def is_iteration(path: str | Path) -> bool:
    return (Path(path) / ITERATION).is_file()


def plot_rounds(result: IterationResult, path: Path) -> Path:
    """Each task metric against the round: one line per task."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=100, layout="constrained")
    ax = fig.subplots()
    rows = result.evaluated
    for column in result.columns:
        points = [(r["round"], r["values"][column]) for r in rows if r["values"].get(column) is not None]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=column)
    ax.set_xticks([r["round"] for r in rows])
    ax.set_xlabel("round (0: the base model)")
    ax.set_ylabel("metric value")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize="small")
    ax.set_title("self-iteration: each task per round")
    fig.savefig(path)
    return path


def plot_round_heatmaps(result: IterationResult, path: Path) -> Path:
    """One heatmap per round: the change of every task metric from the previous round, starred
    where the paired test finds it significant (the round's row of the transfer matrix)."""
    import math

    from matplotlib.figure import Figure

    rows = [r for r in result.evaluated if r["round"]]
    cols = result.columns
    fig = Figure(figsize=(1.9 * len(cols) + 2.5, 1.6 * max(1, len(rows)) + 1.2), dpi=100, layout="constrained")
    axes = fig.subplots(max(1, len(rows)), 1, squeeze=False)[:, 0]
    grid_all = [abs(d) for r in rows for d in r["delta"].values() if d is not None]
    scale = max(grid_all + [0.05])
    for ax, row in zip(axes, rows):
        grid = [[row["delta"].get(c) if row["delta"].get(c) is not None else math.nan for c in cols]]
        image = ax.imshow(grid, cmap="RdBu", vmin=-scale, vmax=scale, aspect="auto")
        ax.set_xticks(range(len(cols)), [c.replace(":", "\n") for c in cols], fontsize="small")
        ax.set_yticks([0], [f"round {row['round']}"])
        for j, c in enumerate(cols):
            dark = abs(row["delta"].get(c) or 0.0) > 0.6 * scale
            ax.text(j, 0, result.cell(row, c), ha="center", va="center", fontsize="small",
                    color="white" if dark else "black")
        fig.colorbar(image, ax=ax, label="change from round before")
    if not rows:
        axes[0].set_axis_off()
        axes[0].text(0.5, 0.5, "no trained round yet", ha="center", va="center")
    fig.suptitle(f"each round: value (change from the round before; * paired p < {result.alpha})", fontsize="medium")
    fig.savefig(path)
    return path


def iteration_report(path: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """`lean-solve report OUT` on an iteration: its table, the per-round line plot and heatmaps."""
    result = IterationResult.load(path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = {"iteration": str(result.out), "columns": result.columns, "rounds": result.rows, "table": result.table(),
              "plots": [str(plot_rounds(result, out / "rounds.png")),
                        str(plot_round_heatmaps(result, out / "heatmaps.png"))]}
    _write_json(out / "report.json", report)
    return report
