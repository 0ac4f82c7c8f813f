"""Autoformalization metrics per dataset, from result records (FormalizationResult.to_dict).

elaboration_rate        problems with at least one statement that elaborates
candidate_elaboration   elaborating candidates / all candidates (first samples and repairs)
first_try_elaboration   elaborating first samples / first samples (what repair adds is the gap)
judge_yes               best statements the judge called faithful / best statements with a verdict
judge_cheap_agreement   best statements where the judge and the cheap checks agree / those with a verdict
cheap_pass              best statements that pass every cheap check / best statements
repair_rounds           mean repair rounds run per problem
distinct_statements     mean distinct elaborating statements per problem
"""

from __future__ import annotations

from typing import Any, Iterable


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def dataset_metrics(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The metrics above for one list of result records."""
    candidates = [c for r in records for c in r["candidates"]]
    first = [c for c in candidates if c["round"] == 0]
    bests = [r["candidates"][r["best"]] for r in records if r.get("best") is not None]
    judged = [b for b in bests if b.get("verdict") is not None]
    passed = [bool(b.get("checks") and b["checks"].get("passed")) for b in bests]
    agree = [b["verdict"] == bool(b.get("checks") and b["checks"].get("passed")) for b in judged]
    return {
        "problems": len(records),
        "elaboration_rate": _ratio(len(bests), len(records)),
        "candidate_elaboration": _ratio(sum(c["elaborated"] for c in candidates), len(candidates)),
        "first_try_elaboration": _ratio(sum(c["elaborated"] for c in first), len(first)),
        "judge_yes": _ratio(sum(b["verdict"] for b in judged), len(judged)),
        "judge_cheap_agreement": _ratio(sum(agree), len(agree)),
        "cheap_pass": _ratio(sum(passed), len(passed)),
        "repair_rounds": _mean([r["rounds_used"] for r in records]),
        "distinct_statements": _mean([r["stats"]["distinct_elaborated"] for r in records]),
    }


def metrics_by_dataset(records: Iterable[dict[str, Any]], default: str = "default") -> dict[str, dict[str, Any]]:
    """Metrics per value of each record's `dataset` field (records without one go to `default`)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(str(r.get("dataset") or default), []).append(r)
    return {name: dataset_metrics(rs) for name, rs in sorted(groups.items())}


def format_table(by_dataset: dict[str, dict[str, Any]]) -> str:
    """A plain-text table, one row per dataset; `-` where a metric has no data."""
    if not by_dataset:
        return "no records"
    columns = list(next(iter(by_dataset.values())))
    rows = [["dataset", *columns]] + [[name, *("-" if m[c] is None else str(m[c]) for c in columns)]
                                      for name, m in by_dataset.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
