"""What counts as verified. Model output is untrusted input: a checker that says yes to a bad
proof is worse than none (threat model: docs/verification.md).

A proof is accepted only if
1. the code uses none of the refused constructs (checked before Lean runs, so nothing
   that could run programs or switch off checking is ever executed);
2. Lean reports no error, the check completed (no timeout, crash, cap);
3. no `sorry`;
4. every theorem's axioms, as printed by Lean's `#print axioms` on commands we append, are in
   the allow-list (`Lean.ofReduceBool`/`Lean.trustCompiler` from `native_decide` only when
   allowed);
5. when a target is given, the theorem of that name proves the target statement, which we
   elaborate *before* the untrusted code so nothing in that code can change its meaning.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Iterable

from solve_in_lean.lean.base import CheckResult, EvalOutput, LeanChecker, Message, default_workers, ordered_map
from solve_in_lean.lean.messages import axioms_from_messages
from solve_in_lean.lean.source import declared_names, mask_comments_and_strings, split_header, validate_input

STANDARD_AXIOMS = frozenset({"propext", "Classical.choice", "Quot.sound"})
NATIVE_AXIOMS = frozenset({"Lean.ofReduceBool", "Lean.trustCompiler"})


@dataclass(frozen=True)
class Target:
    """The theorem that must be proved: its name and its statement as a Lean proposition.

    `params`/`args` abstract the statement over names the solution defines, e.g. a compute
    problem's answer: params `(clips_answer : ℕ)`, args `clips_answer`. Then the statement is
    elaborated with `clips_answer` bound, and the proved theorem must state it for the
    solution's own `clips_answer`.
    """

    name: str
    statement: str
    params: str = ""
    args: str = ""


@dataclass(frozen=True)
class Policy:
    allowed_axioms: frozenset[str] = STANDARD_AXIOMS
    allow_native: bool = False
    """Accept `native_decide` (trusts the compiler, not just the kernel)."""

    def allows(self, axiom: str) -> bool:
        return axiom in self.allowed_axioms or (self.allow_native and axiom in NATIVE_AXIOMS)

    @classmethod
    def with_extra(cls, extra: Iterable[str] = (), allow_native: bool = False) -> "Policy":
        return cls(STANDARD_AXIOMS | frozenset(extra), allow_native)


@dataclass
class Verdict:
    verified: bool
    reasons: list[str]
    check: CheckResult
    """Lean's result with positions mapped back to the submitted code; only its messages."""
    answer: str | None = None
    """What Lean printed for the answer definition (`#eval`, or its body where Lean cannot evaluate)."""

    def to_dict(self) -> dict:
        d = self.check.to_dict()
        d.update(ok=self.verified, verified=self.verified, reasons=self.reasons, answer=self.answer,
                 lean_ok=self.check.ok)
        return d


# --- refused constructs --------------------------------------------------------------------

_REFUSED_COMMANDS = {
    "axiom": "declares a new axiom, which can assume anything",
    "unsafe": "`unsafe` code is not checked by the kernel",
    "implemented_by": "replaces checked code by unchecked code at run time",
    "extern": "binds a definition to foreign code",
    "run_cmd": "runs a metaprogram while checking",
    "run_elab": "runs a metaprogram while checking",
    "run_meta": "runs a metaprogram while checking",
    "#exit": "stops Lean before the rest of the file, including the audit, is checked",
    "elab": "defines a new elaborator (code run at check time)",
    "elab_rules": "redefines how syntax is elaborated",
    "macro": "defines new syntax that can change what existing text means",
    "macro_rules": "redefines tactics or notation",
    "syntax": "defines new syntax",
    "declare_syntax_cat": "defines new syntax",
    "notation": "redefines notation, which can change what a statement says",
    "infix": "redefines notation", "infixl": "redefines notation", "infixr": "redefines notation",
    "prefix": "redefines notation", "postfix": "redefines notation",
    "initialize": "runs code when the environment is loaded",
    "builtin_initialize": "runs code when the environment is loaded",
}
_REFUSED_NAMES = {
    # effects: with these, `#eval` runs arbitrary programs on the checking machine
    "IO": "performs input/output", "EIO": "performs input/output", "BaseIO": "performs input/output",
    "System": "touches the operating system", "Process": "starts processes",
    # metaprogramming: reads or changes the environment and the checker itself
    "CoreM": "runs a metaprogram", "MetaM": "runs a metaprogram", "TermElabM": "runs a metaprogram",
    "CommandElabM": "runs a metaprogram", "TacticM": "runs a metaprogram", "Elab": "runs a metaprogram",
    "Environment": "changes the environment directly", "addDecl": "adds declarations without elaboration",
    "unsafeCast": "casts without proof", "unsafeIO": "performs input/output",
    "unsafeBaseIO": "performs input/output", "unsafeEIO": "performs input/output",
}
_REFUSED_OPTIONS = re.compile(r"\bset_option\s+((?:debug|interpreter|compiler|trust)\.?[\w.]*)")
_REFUSED_ATTRS = re.compile(
    r"@\[[^\]]*\b(extern|implemented_by|export|init|builtin_init|command_elab|term_elab|tactic|macro|"
    r"builtin_\w+|never_extract|csimp)\b[^\]]*\]|\battribute\s*\[[^\]]*\b(extern|implemented_by|init|"
    r"command_elab|term_elab|tactic|macro|csimp)\b")
_WORD = re.compile(r"#?[A-Za-z_][A-Za-z0-9_'!?]*(?:\.[A-Za-z_][A-Za-z0-9_'!?]*)*")


def refused_constructs(code: str) -> list[str]:
    """Reasons the code must not be run at all; empty when none applies. Comments and strings
    are ignored, as Lean ignores them."""
    masked = mask_comments_and_strings(code)
    reasons: list[str] = []
    seen: set[str] = set()

    def refuse(what: str, why: str, offset: int) -> None:
        if what not in seen:
            seen.add(what)
            line = masked.count("\n", 0, offset) + 1
            reasons.append(f"refused construct `{what}` (line {line}): {why}")

    for m in _WORD.finditer(masked):
        word = m.group(0)
        if word in _REFUSED_COMMANDS:
            refuse(word, _REFUSED_COMMANDS[word], m.start())
            continue
        for part in word.split("."):
            if part in _REFUSED_NAMES:
                refuse(word, _REFUSED_NAMES[part], m.start())
                break
    for m in _REFUSED_OPTIONS.finditer(masked):
        refuse(f"set_option {m.group(1)}", "changes how Lean checks (kernel, interpreter or trust)", m.start())
    for m in _REFUSED_ATTRS.finditer(masked):
        attr = m.group(1) or m.group(2)
        refuse(f"@[{attr}]", "attaches unchecked behaviour to a declaration", m.start())
    return reasons


# --- the audited file ----------------------------------------------------------------------

@dataclass
class _Audit:
    """The submitted code with our commands around it, and where each part landed."""

    text: str
    code_header_lines: int
    pre_lines: int
    code_lines: int
    footer: dict[int, tuple[str, str]]  # line in text -> (kind, subject)
    sentinel: str


def _lines(s: str) -> int:
    return s.count("\n")


def build_audit(code: str, *, target: Target | None, answer_name: str | None, evaluates: bool,
                nonce: str | None = None) -> _Audit:
    nonce = nonce or secrets.token_hex(4)
    head, body = split_header(code)
    if head and not head.endswith("\n"):
        head += "\n"
    pre = ""
    expected = f"_lean_solve_expected_{nonce}"
    if target is not None:
        params = f" {target.params}" if target.params else ""
        pre = f"def {expected}{params} : Prop :=\n  ({target.statement})\n"
    if body and not body.endswith("\n"):
        body += "\n"
    footer_lines: list[tuple[str, str, str]] = [("note", "", "-- lean-solve audit")]
    names = declared_names(body)
    for name in names:
        footer_lines.append(("axioms", name, f"#print axioms {name}"))
    if target is not None:
        check = f"_lean_solve_target_{nonce}"
        args = f" {target.args}" if target.args else ""
        footer_lines.append(("target", target.name, f"theorem {check} : {expected}{args} := @{target.name}"))
        footer_lines.append(("axioms", check, f"#print axioms {check}"))
    if answer_name:
        cmd = "#eval" if evaluates else "#print"
        footer_lines.append(("answer", answer_name, f"{cmd} {answer_name}"))
    sentinel = f"lean-solve audit complete {nonce}"
    footer_lines.append(("sentinel", "", f'#print "{sentinel}"'))
    start = _lines(head) + _lines(pre) + _lines(body) + 2  # line after the blank separator
    footer = {start + i: (kind, subject) for i, (kind, subject, _) in enumerate(footer_lines)}
    text = head + pre + body + "\n" + "\n".join(line for _, _, line in footer_lines) + "\n"
    return _Audit(text, _lines(head), _lines(pre), _lines(body), footer, sentinel)


def _map_back(audit: _Audit, m: Message) -> tuple[str, Message]:
    """Where a message came from ('code', 'pre', 'footer'), with its line in the submitted code."""
    if m.in_header or m.line <= audit.code_header_lines:
        return "code", m
    if m.line <= audit.code_header_lines + audit.pre_lines:
        return "pre", m
    if m.line <= audit.code_header_lines + audit.pre_lines + audit.code_lines:
        shift = audit.pre_lines
        end = None if m.end_line is None else m.end_line - shift
        return "code", Message(m.severity, m.line - shift, m.column, m.text, end, m.end_column, m.in_header)
    return "footer", m


def verify(code: str | bytes, checker: LeanChecker, *, header: str | None = None,
           target: Target | None = None, answer_name: str | None = None, policy: Policy | None = None,
           timeout_s: float | None = None) -> Verdict:
    """Check `code` with `checker` and apply every rule above. Never raises for bad code."""
    policy = policy or Policy()
    text, problem = validate_input(code, checker.max_input_bytes)
    if problem is not None:
        empty = CheckResult(status="invalid_input", detail=problem, backend=checker.name)
        return Verdict(False, [problem], empty)
    refused = refused_constructs(text)  # the header is the caller's, trusted; the code is not
    if refused:
        return Verdict(False, refused, CheckResult(status="refused", detail=refused[0], backend=checker.name))
    audit = build_audit(text, target=target, answer_name=answer_name,
                        evaluates=getattr(checker, "evaluates", True))
    raw = checker.check(audit.text, header=header, timeout_s=timeout_s)

    code_msgs: list[Message] = []
    footer_msgs: dict[int, list[Message]] = {}
    pre_errors: list[Message] = []
    for m in raw.messages:
        where, mapped = _map_back(audit, m)
        if where == "code":
            code_msgs.append(mapped)
        elif where == "pre":
            if m.severity == "error":
                pre_errors.append(m)
        else:
            footer_msgs.setdefault(m.line, []).append(m)

    axioms: dict[str, list[str]] = {}
    answer: str | None = None
    reasons: list[str] = []
    sentinel_seen = target_failed = False
    for line, (kind, subject) in audit.footer.items():
        msgs = footer_msgs.get(line, [])
        errors = [m for m in msgs if m.severity == "error"]
        if kind == "axioms" and subject.startswith("_lean_solve_target_") and target_failed:
            continue  # nothing was proved, so there is nothing to audit
        if kind == "axioms":
            printed = axioms_from_messages(msgs)
            if errors or not printed:
                what = "the target theorem" if subject.startswith("_lean_solve_target_") else f"`{subject}`"
                reasons.append(f"could not audit the axioms of {what}"
                               + (f": {_short(errors[0].text)}" if errors else ""))
            for name, axs in printed.items():
                shown = target.name if target and name.startswith("_lean_solve_target_") else name
                axioms.setdefault(shown, axs)
        elif kind == "target" and errors:
            target_failed = True
            if not pre_errors:
                reasons.append(_target_reason(subject, errors[0].text))
        elif kind == "answer":
            if errors:
                reasons.append(f"Lean could not evaluate the answer `{subject}`: {_short(errors[0].text)}")
            else:
                answer = _answer_text([m.text for m in msgs if m.severity == "information"])
        elif kind == "sentinel":
            sentinel_seen = any(audit.sentinel in m.text for m in msgs)

    result = CheckResult(status=raw.status, messages=code_msgs, axioms=axioms, evals=raw.evals,
                         sorry=raw.sorry, elapsed_s=raw.elapsed_s, backend=raw.backend,
                         lean_version=raw.lean_version, detail=raw.detail)
    first_body_line = audit.code_header_lines + audit.pre_lines
    result.evals = [EvalOutput(e.line - audit.pre_lines if e.line > first_body_line else e.line, e.text)
                    for e in raw.evals if e.line <= audit.code_header_lines
                    or first_body_line < e.line <= first_body_line + audit.code_lines]
    code_errors = [m for m in code_msgs if m.severity == "error"]
    result.status = raw.status if not raw.completed else ("error" if code_errors or reasons else raw.status)

    final: list[str] = []
    if not raw.completed:
        final.append(raw.detail or f"the check did not complete ({raw.status})")
    if pre_errors:
        final.append(f"the target statement itself does not elaborate: {_short(pre_errors[0].text)}")
    for m in code_errors[:5]:
        final.append(f"error at {m.line}:{m.column}: {_short(m.text)}")
    if len(code_errors) > 5:
        final.append(f"... and {len(code_errors) - 5} more errors")
    if raw.sorry or any("sorryAx" in a for a in axioms.values()):
        final.append("the proof uses `sorry`")
    for name, axs in axioms.items():
        bad = [a for a in axs if not policy.allows(a) and a != "sorryAx"]
        if bad:
            hint = " (native_decide: pass --allow-native to accept)" if set(bad) & NATIVE_AXIOMS else ""
            final.append(f"`{name}` depends on axioms outside the allow-list: {', '.join(bad)}{hint}")
    if raw.completed and not sentinel_seen:
        final.append("Lean stopped before the end of the file (an unclosed comment or `#exit`?)")
    if raw.completed and not code_errors:
        final.extend(reasons)
    elif raw.completed:
        final.extend(r for r in reasons if not r.startswith("could not audit"))
    return Verdict(verified=not final, reasons=_dedupe(final), check=result, answer=answer)


def _target_reason(name: str, error: str) -> str:
    if re.search(r"[Uu]nknown (identifier|constant)", error):
        return f"no theorem named `{name}` was proved"
    return f"the theorem `{name}` does not prove the expected statement: {_short(error)}"


def _answer_text(printed: list[str]) -> str | None:
    """The value line of `#eval x`, or the body of `#print x` (after `:=`)."""
    if not printed:
        return None
    text = printed[-1].strip()
    if ":=" in text and re.match(r"^(@\[[^\]]*\]\s*)?(noncomputable\s+)?(def|abbrev|theorem|opaque)\b", text):
        text = text.split(":=", 1)[1].strip()
    return text


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


@dataclass(frozen=True)
class VerifyRequest:
    code: str | bytes
    header: str | None = None
    target: Target | None = None
    answer_name: str | None = None


def verify_many(requests: list[VerifyRequest], checker: LeanChecker, *, policy: Policy | None = None,
                timeout_s: float | None = None, workers: int | None = None) -> list[Verdict]:
    """`verify` for many pieces of code in parallel (the checker's worker count); input order kept."""
    def one(r: VerifyRequest) -> Verdict:
        return verify(r.code, checker, header=r.header, target=r.target, answer_name=r.answer_name,
                      policy=policy, timeout_s=timeout_s)

    return ordered_map(one, requests, workers or checker.workers or default_workers())
