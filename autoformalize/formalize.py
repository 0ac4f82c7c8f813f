"""English -> Lean statements that elaborate and say what the English says.

1. A few-shot prompt (autoformalize/prompts/formalize.toml) gives `k` samples.
2. Each candidate statement is elaborated without its proof (FormalProblem.elaboration_check),
   all in one `check_many` batch; identical statements (same key) are checked once.
3. Candidates that fail go back to the model with Lean's error messages, up to `rounds` times.
4. Each distinct elaborating statement is back-translated to English and judged against the
   original; cheap checks run too; every candidate gets a score (faithfulness.score).
5. Statements equal up to whitespace and bound-variable names form one group.
Everything is kept: each candidate with its Lean status, errors, repair parent and score.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

from autoformalize.backtranslate import backtranslate_many
from autoformalize.extract import extract, garbage_reason
from autoformalize.faithfulness import cheap_checks, parse_verdict, score
from autoformalize.problem import FormalProblem, Kind
from autoformalize.prompting import PromptTemplate
from autoformalize.protocols import CheckerLike, CheckResultLike, GeneratorLike, LeanRequest
from autoformalize.templates import generate_texts, prompt_hash, render, template

DEFAULT_HEADER = "import Mathlib\n\nopen BigOperators Real Nat Topology Rat\n"
"""The miniF2F header: what the few-shot examples are written against."""
MAX_RAW_CHARS = 4000
"""Model output kept in records (the full text can be huge garbage)."""
MAX_ERRORS_FED_BACK = 5
MAX_ERROR_CHARS = 600

_PROVE = re.compile(r"\b(prove|show that|demonstrate that|verify that|show\s+\$)|^\s*show\b", re.I | re.M)


def guess_kind(text: str) -> Kind:
    """`prove` when the English asks to prove or show something, else `compute`."""
    return "prove" if _PROVE.search(text) else "compute"


@dataclass
class Candidate:
    index: int
    round: int
    """0 for a first sample, r for the r-th repair."""
    sample: int
    parent: int | None
    """The candidate this one repairs."""
    task: str
    raw: str
    problem: FormalProblem | None = None
    status: str = "unread"
    """`unread` (no statement in the output), a Lean status (ok, error, timeout, ...), or
    `header_error` (the header itself does not elaborate: not the model's fault)."""
    reason: str = ""
    """Why the candidate failed, in one sentence."""
    notes: list[str] = field(default_factory=list)
    lean_errors: list[dict[str, Any]] = field(default_factory=list)
    feedback: str = ""
    """What a repair prompt told the model about this candidate."""
    group: int | None = None
    """Index of the first candidate with the same statement key."""
    backtranslation: str | None = None
    judge_text: str | None = None
    verdict: bool | None = None
    checks: dict[str, Any] | None = None
    score: float = 0.0

    @property
    def elaborated(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """Without the problem's source and header: the result record holds them once."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "problem"}
        if self.problem is not None:
            d["problem"] = {k: v for k, v in self.problem.to_dict().items() if k not in ("source", "header")}
        else:
            d["problem"] = None
        d["elaborated"] = self.elaborated
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "", header: str = "") -> "Candidate":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if known.get("problem"):
            known["problem"] = FormalProblem.from_dict({"source": source, "header": header, **known["problem"]})
        return cls(**known)


@dataclass
class FormalizationResult:
    id: str
    source: str
    kind: Kind
    header: str
    model: str
    candidates: list[Candidate]
    ranking: list[int]
    """Candidate indices, best first: elaborated before not, then score, group size, order."""
    rounds_used: int
    """Repair rounds that sent at least one prompt."""

    @property
    def best(self) -> Candidate | None:
        first = self.candidates[self.ranking[0]] if self.ranking else None
        return first if first is not None and first.elaborated else None

    @property
    def groups(self) -> dict[int, list[int]]:
        """Dedup groups: representative index -> indices of every candidate with that statement."""
        out: dict[int, list[int]] = {}
        for c in self.candidates:
            if c.group is not None:
                out.setdefault(c.group, []).append(c.index)
        return out

    def stats(self) -> dict[str, Any]:
        elaborated = [c for c in self.candidates if c.elaborated]
        best = self.best
        return {
            "candidates": len(self.candidates),
            "elaborated": len(elaborated),
            "distinct_elaborated": len({c.group for c in elaborated}),
            "rounds_used": self.rounds_used,
            "best_round": best.round if best else None,
            "best_score": best.score if best else None,
            "best_verdict": best.verdict if best else None,
            "best_checks_passed": best.checks.get("passed") if best and best.checks else None,
        }

    def summary(self) -> str:
        """One paragraph saying what happened, for people and logs."""
        st = self.stats()
        if self.best is not None:
            verdict = {True: "judged faithful", False: "judged unfaithful", None: "no judge verdict"}
            return (f"{st['elaborated']} of {st['candidates']} candidates elaborated "
                    f"({st['distinct_elaborated']} distinct statements, {self.rounds_used} repair rounds); "
                    f"best score {self.best.score:.2f}, {verdict[self.best.verdict]}.")
        reasons = Counter(re.sub(r"\d+", "N", c.reason.split("\n")[0][:120]) for c in self.candidates)
        listed = "; ".join(f"{n}× {r}" for r, n in reasons.most_common(3))
        return (f"No candidate elaborated: {st['candidates']} candidates over {self.rounds_used} repair "
                f"rounds. Most common failures: {listed}.")

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {"id": self.id, "source": self.source, "kind": self.kind, "header": self.header,
                "model": self.model, "rounds_used": self.rounds_used, "ranking": self.ranking,
                "best": best.index if best else None, "stats": self.stats(), "summary": self.summary(),
                "candidates": [c.to_dict() for c in self.candidates]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FormalizationResult":
        return cls(id=d["id"], source=d["source"], kind=d["kind"], header=d["header"], model=d["model"],
                   candidates=[Candidate.from_dict(c, source=d["source"], header=d["header"])
                               for c in d["candidates"]], ranking=list(d["ranking"]),
                   rounds_used=d["rounds_used"])


def formalize(problem_text: str, generator: GeneratorLike, checker: CheckerLike, *, params: Any,
              k: int = 8, rounds: int = 2, kind: Kind | None = None, header: str = DEFAULT_HEADER,
              id: str = "problem", judge: bool = True, prompts: Mapping[str, PromptTemplate] | None = None,
              chat: bool = True, timeout_s: float | None = None, workers: int | None = None) -> FormalizationResult:
    """Formalize one problem: sample, elaborate, repair, back-translate, judge, rank (see module doc).

    `params` are the caller's sampling params (only `n` is changed here). `kind` None guesses
    the kind for the prompt and accepts either shape back.
    """
    run = _Run(problem_text, generator, checker, params=params, kind=kind, header=header, id=id,
               prompts=prompts, chat=chat, timeout_s=timeout_s, workers=workers)
    new = run.sample(k)
    rounds_used = 0
    for r in range(rounds + 1):
        run.check(new)
        if any(c.status == "header_error" for c in new):
            break  # the model cannot repair a broken header
        failed = [c for c in new if not c.elaborated]
        if r == rounds or not failed:
            break
        new = run.repair(failed, r + 1)
        rounds_used = r + 1
    run.rate(judge)
    return FormalizationResult(id=id, source=problem_text, kind=run.kind, header=header, model=run.model,
                               candidates=run.candidates, ranking=_rank(run.candidates), rounds_used=rounds_used)


class _Run:
    """The state of one `formalize` call: candidates so far and Lean verdicts by statement key."""

    def __init__(self, text: str, generator: GeneratorLike, checker: CheckerLike, *, params: Any,
                 kind: Kind | None, header: str, id: str, prompts: Mapping[str, PromptTemplate] | None,
                 chat: bool, timeout_s: float | None, workers: int | None) -> None:
        self.text, self.generator, self.checker, self.params = text, generator, checker, params
        self.requested_kind = kind
        self.kind: Kind = kind or guess_kind(text)
        self.header, self.id, self.prompts, self.chat = header, id, prompts, chat
        self.timeout_s, self.workers = timeout_s, workers
        self.model = str(getattr(generator, "model", "") or type(generator).__name__)
        self.candidates: list[Candidate] = []
        self.verdicts: dict[str, tuple[str, str, list[dict[str, Any]]]] = {}

    def _add(self, text: str, error: str | None, *, round: int, sample: int, parent: int | None,
             task: str, prompt: Any) -> Candidate:
        c = Candidate(index=len(self.candidates), round=round, sample=sample, parent=parent, task=task,
                      raw=text[:MAX_RAW_CHARS] if isinstance(text, str) else "")
        provenance = {"model": self.model, "task": task, "prompt": template(self.prompts, task).name,
                      "prompt_sha": prompt_hash(prompt), "sample": sample, "round": round, "parent": parent}
        got = extract(text, problem_id=self.id, source=self.text, kind=self.requested_kind,
                      header=self.header, provenance=provenance)
        c.problem, c.notes = got.problem, list(got.notes)
        if got.problem is None:
            c.reason = error or got.error or "unreadable"
        self.candidates.append(c)
        return c

    def sample(self, k: int) -> list[Candidate]:
        tmpl = template(self.prompts, "formalize")
        prompt = render(tmpl, chat=self.chat, problem=self.text, kind=self.kind)
        texts = generate_texts(self.generator, [prompt], self.params, k, tmpl.stop)[0]
        return [self._add(t, e, round=0, sample=i, parent=None, task="formalize", prompt=prompt)
                for i, (t, e) in enumerate(texts)]

    def check(self, new: list[Candidate]) -> None:
        """Elaborate every new statement not seen before, in one batch."""
        pending: dict[str, FormalProblem] = {}
        for c in new:
            if c.problem is not None and c.problem.key() not in self.verdicts:
                pending.setdefault(c.problem.key(), c.problem)
        requests = [LeanRequest(p.elaboration_check(), self.header, self.timeout_s) for p in pending.values()]
        results = list(self.checker.check_many(requests, workers=self.workers)) if requests else []
        for (key, problem), res in zip(pending.items(), results):
            self.verdicts[key] = _lean_verdict(res, problem.elaboration_check())
        for c in new:
            if c.problem is not None:
                c.status, c.reason, c.lean_errors = self.verdicts[c.problem.key()]

    def repair(self, failed: list[Candidate], round: int) -> list[Candidate]:
        """One repair prompt per distinct failure, asking for as many samples as it had members."""
        by_attempt: dict[str, list[Candidate]] = {}
        for c in failed:
            by_attempt.setdefault(c.problem.key() if c.problem else c.raw, []).append(c)
        tmpl = template(self.prompts, "formalize_repair")
        heads, batch = [], []
        for members in by_attempt.values():
            head = members[0]
            head.feedback = _feedback(head)
            for m in members[1:]:
                m.feedback = head.feedback
            attempt = head.problem.statement if head.problem else _readable(head.raw)
            batch.append(render(tmpl, chat=self.chat, problem=self.text, kind=self.kind, attempt=attempt.strip(),
                                errors=head.feedback))
            heads.append((head, len(members)))
        n = max(size for _, size in heads)
        outs = generate_texts(self.generator, batch, self.params, n, tmpl.stop)
        new = []
        for (head, size), prompt, texts in zip(heads, batch, outs):
            new += [self._add(t, e, round=round, sample=j, parent=head.index, task="formalize_repair",
                              prompt=prompt) for j, (t, e) in enumerate(texts[:size])]
        return new

    def rate(self, judge: bool) -> None:
        """Group, back-translate and judge each distinct elaborated statement, then score all."""
        reps: dict[str, Candidate] = {}
        for c in self.candidates:
            if c.problem is not None:
                c.group = reps.setdefault(c.problem.key(), c).index
        judged = [c for c in reps.values() if c.elaborated]
        english = backtranslate_many([c.problem.statement for c in judged], self.generator,
                                     params=self.params, prompts=self.prompts, chat=self.chat)
        for c, text in zip(judged, english):
            c.backtranslation = text
        if judge and judged:
            tmpl = template(self.prompts, "judge")
            batch = [render(tmpl, chat=self.chat, problem=self.text, lean=c.problem.statement.strip(),
                            backtranslation=c.backtranslation or "(no back-translation)") for c in judged]
            for c, texts in zip(judged, generate_texts(self.generator, batch, self.params, 1, tmpl.stop)):
                c.judge_text = texts[0][0][:MAX_RAW_CHARS]
                c.verdict = parse_verdict(c.judge_text)
        for c in judged:
            checks = cheap_checks(c.problem)
            c.checks = checks.to_dict()
            c.score = score(True, c.verdict, checks)
            c.problem.scores = {"score": c.score, "verdict": c.verdict, "coverage": checks.coverage,
                                "asked": checks.asked}
        by_index = {c.index: c for c in judged}
        for c in self.candidates:
            rep = by_index.get(c.group) if c.group is not None else None
            if rep is not None and c is not rep:
                c.verdict, c.checks, c.score = rep.verdict, rep.checks, rep.score
                c.problem.scores = dict(rep.problem.scores)


def _lean_verdict(res: CheckResultLike, code: str) -> tuple[str, str, list[dict[str, Any]]]:
    """(status, reason, errors) of one elaboration check; errors carry the code span they point at."""
    errors = [m for m in res.messages if m.severity == "error"]
    listed = [{"line": m.line, "column": m.column, "text": m.text, "span": _span(code, m),
               "in_header": bool(getattr(m, "in_header", False))} for m in errors]
    if res.ok:
        return "ok", "", []
    if listed and all(e["in_header"] for e in listed):
        return "header_error", f"the header does not elaborate: {listed[0]['text'][:200]}", listed
    if res.status == "error":
        first = next((e for e in listed if not e["in_header"]), None)
        return "error", f"Lean error: {first['text'][:200]}" if first else "Lean reported an error", listed
    detail = getattr(res, "detail", "") or res.status
    return res.status, f"Lean did not finish the check ({res.status}): {detail}", listed


def _span(code: str, m: Any) -> str:
    """The source text an error points at (its range, else the rest of its line), short."""
    lines = code.split("\n")
    if not 1 <= m.line <= len(lines):
        return ""
    line = lines[m.line - 1]
    end_line, end_col = getattr(m, "end_line", None), getattr(m, "end_column", None)
    if end_line == m.line and end_col is not None and end_col > m.column:
        return line[m.column:end_col][:120]
    return line[m.column:].strip()[:120]


def _readable(raw: str) -> str:
    """A failed output as it can be shown back to the model: garbage is not repeated."""
    return raw[:2000] if garbage_reason(raw) is None else "(no usable output)"


def _feedback(c: Candidate) -> str:
    """What the repair prompt tells the model: Lean's own messages, or why nothing was read."""
    if c.problem is None:
        return f"Your answer could not be read as a Lean statement: {c.reason}."
    own = [e for e in c.lean_errors if not e["in_header"]][:MAX_ERRORS_FED_BACK]
    if not own:
        return c.reason
    lines = []
    for e in own:
        where = f" at `{e['span']}`" if e["span"] else ""
        lines.append(f"- error{where}: {e['text'][:MAX_ERROR_CHARS]}")
    return "\n".join(lines)


def _rank(candidates: list[Candidate]) -> list[int]:
    sizes = Counter(c.group for c in candidates if c.group is not None)
    return [c.index for c in sorted(candidates, key=lambda c: (
        not c.elaborated, -c.score, -sizes.get(c.group, 0) if c.group is not None else 0, c.round, c.sample,
        c.index))]
