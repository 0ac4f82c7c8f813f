"""Reports over run directories: a comparison table, paired tests between two runs, PNG plots.

Metrics are recomputed from each run's records, so a run that is still going (or was killed)
reports what it has. Plots use matplotlib's Figure API without pyplot: no display, no global
state, safe in notebooks and on servers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from solve_in_lean.eval.metrics import Estimate, PairedComparison, paired_comparison
from solve_in_lean.eval.run import Run, load_run
from solve_in_lean.eval.tasks import item_scores, metric_names


def metrics_lines(metrics: dict[str, Any]) -> list[str]:
    """One line per metric: value, confidence interval and items; the main metric starred."""
    width = max(len(n) for n in metrics["metrics"])
    lines = []
    for name, m in metrics["metrics"].items():
        est = Estimate.from_dict(m)
        star = "*" if name == metrics["main"] else " "
        lines.append(f"{star} {name.ljust(width)}  {est.format()}  (n={est.n})")
    conf = round(100 * metrics.get("confidence", 0.95))
    lines.append(f"  [{conf}% confidence intervals: Wilson for rates, normal for means; * main metric]")
    return lines


def run_labels(runs: list[Run]) -> list[str]:
    """Directory names, made unique with their parent's name where two runs share one."""
    names = [r.name for r in runs]
    return [f"{r.dir.parent.name}/{r.name}" if names.count(r.name) > 1 else r.name for r in runs]


def text_table(rows: list[list[str]]) -> str:
    """Rows of cells as aligned plain-text columns."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def comparison_table(runs: list[Run], metrics: list[dict[str, Any]]) -> str:
    """One row per run: task, data, items done, model, and each metric with its interval."""
    names = list(dict.fromkeys(n for m in metrics for n in m["metrics"]))
    rows = [["run", "task", "data", "done", "model", *names]]
    for label, run, m in zip(run_labels(runs), runs, metrics):
        cells = [Estimate.from_dict(m["metrics"][n]).format() if n in m["metrics"] else "-" for n in names]
        model = Path(str(run.config["model"].get("model", ""))).name
        rows.append([label, run.task, Path(run.config["data"]).name,
                     f"{m['items']}/{len(run.config['item_ids'])}", model, *cells])
    return text_table(rows)


def compare(a: Run, b: Run) -> dict[str, PairedComparison]:
    """B against A for each metric of their task, paired on the items both finished."""
    if a.task != b.task:
        raise ValueError(f"runs of different tasks ({a.task}, {b.task}) cannot be compared item by item")
    names = [n for n in metric_names(a.task, a.options) if n in metric_names(b.task, b.options)]
    per_run = [{r["id"]: item_scores(r, names) for r in run.records()} for run in (a, b)]
    return {n: paired_comparison({i: s[n] for i, s in per_run[0].items()}, {i: s[n] for i, s in per_run[1].items()})
            for n in names}


def format_number(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def comparison_lines(labels: tuple[str, str], comparisons: dict[str, PairedComparison], alpha: float) -> list[str]:
    """Per metric: both values, B - A, the paired counts and the exact test's p-value."""
    rows = [["metric", labels[0], labels[1], "difference", "paired n", f"only/more {labels[0]}",
             f"only/more {labels[1]}", "p", "test"]]
    for name, c in comparisons.items():
        diff = "-" if c.difference is None else f"{c.difference:+.3f}"
        sig = " *" if c.significant(alpha) else ""
        rows.append([name, format_number(c.mean_a), format_number(c.mean_b), diff, str(c.n), str(c.a_better),
                     str(c.b_better), f"{c.p_value:.4f}{sig}", c.test])
    return [text_table(rows), f"(difference = {labels[1]} - {labels[0]} on the items both finished; "
                              f"* significant at alpha={alpha})"]


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def plot_metrics(runs: list[Run], metrics: list[dict[str, Any]], path: Path) -> Path:
    """Bars per metric and run, with confidence intervals; one panel per task."""
    tasks = list(dict.fromkeys(r.task for r in runs))
    labels = run_labels(runs)
    fig = _figure(max(5.0, 2.2 * max(len(m["metrics"]) for m in metrics) + 1), 3.2 * len(tasks))
    axes = fig.subplots(len(tasks), 1, squeeze=False)[:, 0]
    for ax, task in zip(axes, tasks):
        idx = [i for i, r in enumerate(runs) if r.task == task]
        names = list(metrics[idx[0]]["metrics"])
        width = 0.8 / len(idx)
        for j, i in enumerate(idx):
            ests = [Estimate.from_dict(metrics[i]["metrics"][n]) for n in names]
            xs = [x + (j - (len(idx) - 1) / 2) * width for x in range(len(names))]
            vals = [e.value or 0.0 for e in ests]
            errs = [[max(0.0, (e.value or 0) - (e.low or 0)) for e in ests],
                    [max(0.0, (e.high or 0) - (e.value or 0)) for e in ests]]
            bars = ax.bar(xs, vals, width, yerr=errs, capsize=3, label=labels[i])
            ax.bar_label(bars, labels=[e.format(2).split(" ")[0] for e in ests], fontsize="small", padding=2)
        ax.set_xticks(range(len(names)), names)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{task}  (bars: 95% confidence intervals)")
        ax.legend(fontsize="small")
    fig.savefig(path)
    return path


def plot_pass_at_k(runs: list[Run], metrics: list[dict[str, Any]], path: Path) -> Path | None:
    """pass@k against k for the prove runs that report more than one k; None when none does."""
    curves = [(label, m) for label, r, m in zip(run_labels(runs), runs, metrics)
              if r.task == "prove" and len(m["metrics"]) > 1]
    if not curves:
        return None
    fig = _figure(5, 3.5)
    ax = fig.subplots()
    for label, m in curves:
        ks = sorted(int(n.split("@")[1]) for n in m["metrics"] if n.startswith("pass@"))  # not the per-round ones
        ax.plot(ks, [m["metrics"][f"pass@{k}"]["value"] or 0.0 for k in ks], marker="o", label=label)
        rounds = sorted({int(n[len("round"):n.index(":")]) for n in m["metrics"] if n.startswith("round")})
        for r in rounds[:-1]:  # self-correction: the earlier rounds dashed (the last is the curve above)
            ax.plot(ks, [m["metrics"][f"round{r}:pass@{k}"]["value"] or 0.0 for k in ks], marker=".",
                    linestyle="--", label=f"{label}, round {r}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize="small")
    fig.savefig(path)
    return path


def plot_difference(labels: tuple[str, str], comparisons: dict[str, PairedComparison], path: Path,
                    alpha: float) -> Path:
    """B - A per metric, annotated with the paired test's p-value."""
    names = [n for n, c in comparisons.items() if c.difference is not None] or list(comparisons)
    diffs = [comparisons[n].difference or 0.0 for n in names]
    fig = _figure(6, 0.6 * len(names) + 1.5)
    ax = fig.subplots()
    colours = ["tab:green" if d > 0 else "tab:red" if d < 0 else "tab:gray" for d in diffs]
    ax.barh(names, diffs, color=colours)
    ax.axvline(0, color="black", linewidth=0.8)
    for y, n in enumerate(names):
        c = comparisons[n]
        ax.annotate(f"p={c.p_value:.3g}{' *' if c.significant(alpha) else ''}", (0, y), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize="small")
    ax.set_xlim(-1, 1)
    ax.set_xlabel(f"{labels[1]} - {labels[0]}")
    ax.set_title(f"paired difference (* p < {alpha})")
    fig.savefig(path)
    return path


def report(run_dirs: list[str | Path], out_dir: str | Path, *, alpha: float = 0.05) -> dict[str, Any]:
    """Table, comparison (exactly two runs of one task) and plots; writes report.json and PNGs to
    `out_dir` and returns what it wrote."""
    from solve_in_lean.eval.iterate import is_iteration, iteration_report

    if len(run_dirs) == 1 and is_iteration(run_dirs[0]):  # `lean-solve iterate` output: plots per round
        return iteration_report(run_dirs[0], out_dir)
    runs = [load_run(d) for d in run_dirs]
    metrics = [r.metrics() for r in runs]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = run_labels(runs)
    result: dict[str, Any] = {"runs": [str(r.dir) for r in runs], "labels": labels,
                              "metrics": dict(zip(labels, metrics)), "table": comparison_table(runs, metrics),
                              "plots": [str(plot_metrics(runs, metrics, out / "metrics.png"))]}
    if (curve := plot_pass_at_k(runs, metrics, out / "pass_at_k.png")) is not None:
        result["plots"].append(str(curve))
    if len(runs) == 2 and runs[0].task == runs[1].task:
        comparisons = compare(*runs)
        pair = (labels[0], labels[1])
        result["comparison"] = {n: c.to_dict() | {"significant": c.significant(alpha)} for n, c in comparisons.items()}
        result["comparison_text"] = "\n".join(comparison_lines(pair, comparisons, alpha))
        result["same_data"] = runs[0].config["data_sha256"] == runs[1].config["data_sha256"]
        result["plots"].append(str(plot_difference(pair, comparisons, out / "difference.png", alpha)))
    (out / "report.json").write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    return result
