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
5. when a target is given, the code declares the theorem of that name and it proves the target
   statement, which we elaborate *before* the untrusted code so nothing in that code can change
   its meaning.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable

from autoformalize.lexer import LexError, Lexed, lex
from solve_in_lean.lean.base import CheckResult, EvalOutput, LeanChecker, Message, default_workers, ordered_map
from solve_in_lean.lean.messages import axioms_from_messages, fold_internal_exceptions
from solve_in_lean.lean.source import (THEOREM_KINDS, Declaration, declarations, reads_alone, render_name,
                                      split_header, split_name, validate_input)

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

    @property
    def parts(self) -> tuple[str, ...]:
        """The name's components, as the audit refers to it and as declarations are read."""
        return split_name(self.name) or (self.name,)


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
    "run_tac": "runs a metaprogram inside a proof", "by_elab": "runs a metaprogram inside a term",
    "simproc": "adds code that `simp` runs while checking", "dsimproc": "adds code that `simp` runs while checking",
    "simproc_decl": "adds code that `simp` runs while checking",
    "dsimproc_decl": "adds code that `simp` runs while checking",
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
    "Meta": "runs a metaprogram", "modifyEnv": "changes the environment directly",
    "setEnv": "changes the environment directly", "addDeclCore": "adds declarations without elaboration",
    "Kernel": "reaches into the kernel", "evalDecl": "runs compiled code", "evalConst": "runs compiled code",
    "importModules": "loads modules at check time",
    # printing: could change how Lean's own reports (`#print axioms`) read
    "PrettyPrinter": "changes how Lean prints terms", "Unexpander": "changes how Lean prints terms",
    "Delab": "changes how Lean prints terms",
}
_REFUSED_OPTION_PREFIXES = ("debug", "interpreter", "compiler", "trust", "doc")
"""`doc.verso` makes Lean parse docstrings as markup: text we read as a comment would be parsed."""
_REFUSED_ATTRS = frozenset({"extern", "implemented_by", "export", "init", "builtin_init", "command_elab",
                            "term_elab", "tactic", "macro", "never_extract", "csimp", "app_unexpander", "delab",
                            "app_delab", "simproc"})
_REFUSED_OPTIONS_RAW = re.compile(r"\bset_option\s+«?((?:debug|interpreter|compiler|trust|doc)\b[\w.»«]*)")
_ATTR_NAMES = "|".join(sorted(_REFUSED_ATTRS)) + r"|builtin_\w+"
_REFUSED_ATTRS_RAW = re.compile(rf"@\[[^\]]*\b({_ATTR_NAMES})\b|\battribute\s*\[[^\]]*\b({_ATTR_NAMES})\b")
_WORD = re.compile(r"#?[A-Za-z_][A-Za-z0-9_'!?]*(?:\.[A-Za-z_][A-Za-z0-9_'!?]*)*")


def refused_constructs(code: str) -> list[str]:
    """Reasons the code must not be run at all; empty when none applies.

    Read token by token as Lean's lexer reads it (autoformalize.lexer), so comments and strings
    are ignored exactly where Lean ignores them and `«IO»` is the name `IO`. Code the lexer
    cannot read with certainty is refused. When a string holds `{…}` (Lean may read it as an
    interpolation, and after a parse error inside it reads the rest of it as code), comments
    and strings give no cover: the whole text is searched as well.
    """
    return screen(code)[1]


def screen(code: str) -> tuple[Lexed | None, list[str]]:
    """The code's one lex (None where the lexer cannot read it) and `refused_constructs`' reasons:
    callers that go on to audit the code reuse the lex instead of reading the text again."""
    try:
        lexed = lex(code)
    except LexError as e:
        return None, [f"the scanner cannot read this the way Lean does: {e}; refused, as it could hide code"]
    return lexed, _refused_in_tokens(lexed) + (_refused_in_raw_text(code) if lexed.braced_strings else [])


class _Refusals:
    def __init__(self, code: str) -> None:
        self.code = code
        self.reasons: list[str] = []
        self.seen: set[str] = set()

    def add(self, what: str, why: str, offset: int) -> None:
        if what not in self.seen:
            self.seen.add(what)
            line = self.code.count("\n", 0, offset) + 1
            self.reasons.append(f"refused construct `{what}` (line {line}): {why}")


def _refused_in_tokens(lexed: Lexed) -> list[str]:
    out = _Refusals(lexed.code)
    toks = lexed.tokens
    attr_depth = 0  # inside `@[…]` or `attribute […]`
    for k, tok in enumerate(toks):
        if tok.kind == "command" and tok.text in _REFUSED_COMMANDS:
            out.add(tok.text, _REFUSED_COMMANDS[tok.text], tok.start)
        if tok.kind == "symbol" and tok.text == "[" and k and (
                (toks[k - 1].text == "@" and toks[k - 1].end == tok.start) or toks[k - 1].text == "attribute"):
            attr_depth = 1
            continue
        if attr_depth and tok.kind == "symbol":
            attr_depth += {"[": 1, "]": -1}.get(tok.text, 0)
        if tok.kind not in ("ident", "name"):
            continue
        if tok.kind == "ident" and not tok.escaped and tok.text in _REFUSED_COMMANDS:
            out.add(tok.text, _REFUSED_COMMANDS[tok.text], tok.start)
            continue
        if attr_depth and (tok.text in _REFUSED_ATTRS or tok.text.startswith("builtin_")):
            out.add(f"@[{tok.text}]", "attaches unchecked behaviour to a declaration", tok.start)
            continue
        for part in tok.parts:
            if part in _REFUSED_NAMES:
                out.add(tok.text, _REFUSED_NAMES[part], tok.start)
                break
        if tok.kind == "ident" and tok.text == "set_option" and k + 1 < len(toks) and toks[k + 1].parts and \
                toks[k + 1].parts[0].split(".")[0] in _REFUSED_OPTION_PREFIXES:
            option = ".".join(toks[k + 1].parts)
            out.add(f"set_option {option}", "changes how Lean checks (kernel, interpreter, trust or docs)",
                    tok.start)
    return out.reasons


def _refused_in_raw_text(code: str) -> list[str]:
    """The refused words anywhere in the text, comments and strings included."""
    out = _Refusals(code)
    for m in _WORD.finditer(code):
        word = m.group(0)
        if word in _REFUSED_COMMANDS:
            out.add(word, _REFUSED_COMMANDS[word] + " (found in a comment or string of a file whose "
                    "`{…}` strings Lean may read as code)", m.start())
            continue
        for part in word.split("."):
            if part in _REFUSED_NAMES:
                out.add(word, _REFUSED_NAMES[part], m.start())
                break
    for m in _REFUSED_OPTIONS_RAW.finditer(code):
        out.add(f"set_option {m.group(1)}", "changes how Lean checks (kernel, interpreter, trust or docs)",
                m.start())
    for m in _REFUSED_ATTRS_RAW.finditer(code):
        out.add(f"@[{m.group(1) or m.group(2)}]", "attaches unchecked behaviour to a declaration (found in a "
                "file whose `{…}` strings Lean may read as code)", m.start())
    return out.reasons


# --- the audited file ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Line:
    """One appended command: what it is for and about whom."""

    kind: str  # note | axioms | target | answer | sentinel
    subject: str = ""
    parts: tuple[str, ...] = ()
    shown: bool = True
    """For `axioms`: listed in the result's `axioms` (theorems); other declarations are audited
    (and rejected on bad axioms) without being listed."""


@dataclass
class _Audit:
    """The submitted code with our commands around it, and where each part landed."""

    text: str
    code_header_lines: int
    pre_lines: int
    code_lines: int
    footer: dict[int, _Line]  # line in text -> the appended command there
    sentinel: str
    body_declarations: list[Declaration]

    def in_body(self, line: int) -> bool:
        first = self.code_header_lines + self.pre_lines
        return first < line <= first + self.code_lines


def _lines(s: str) -> int:
    return s.count("\n")


def _root(parts: tuple[str, ...]) -> str:
    """An absolute reference: `_root_.A.«b c»`, unaffected by namespaces the code leaves open."""
    return "_root_." + render_name(parts)


def build_audit(code: str, *, target: Target | None, answer_name: str | None, evaluates: bool,
                nonce: str | None = None, extra: Iterable[tuple[str, ...]] = (),
                lexed: Lexed | None = None) -> _Audit:
    """The text Lean checks: the code's own header, the target statement, the code, then one
    `#print axioms` per declaration (those the scanner found plus `extra`, e.g. the ones Lean
    itself listed), the target check, the answer and a sentinel. `lexed`: `lex(code)` where the
    caller has it (`screen`), so the code is not read again."""
    nonce = nonce or os.urandom(4).hex()  # what secrets.token_hex does, without loading hashlib/hmac
    head, body = split_header(code, lexed)
    cut = len(head)
    if head and not head.endswith("\n"):
        head += "\n"
    pre = ""
    expected = f"_lean_solve_expected_{nonce}"
    if target is not None:
        params = f" {target.params}" if target.params else ""
        pre = f"def {expected}{params} : Prop :=\n  ({target.statement})\n"
    if body and not body.endswith("\n"):
        body += "\n"
    if lexed is not None and reads_alone(lexed, cut):
        decls = declarations(lexed, cut)  # the body's declarations, from the one lex of the code
    else:
        try:
            decls = declarations(lex(body))
        except LexError:
            decls = []  # refused before Lean runs (refused_constructs); kept total for direct callers
    footer_lines: list[tuple[_Line, str]] = [(_Line("note"), "-- lean-solve audit")]
    audited: set[tuple[str, ...]] = set()
    for d in decls:
        if d.parts and d.kind not in ("example", "axiom") and d.parts not in audited:
            audited.add(d.parts)
            footer_lines.append((_Line("axioms", d.name, d.parts, d.kind in THEOREM_KINDS),
                                 f"#print axioms {_root(d.parts)}"))
    for parts in extra:
        if parts not in audited:
            audited.add(parts)
            footer_lines.append((_Line("axioms", render_name(parts), parts, False), f"#print axioms {_root(parts)}"))
    if target is not None:
        check = f"_lean_solve_target_{nonce}"
        args = f" {target.args}" if target.args else ""
        footer_lines.append((_Line("target", target.name),
                             f"theorem _root_.{check} : _root_.{expected}{args} := @{_root(target.parts)}"))
        footer_lines.append((_Line("axioms", check, (check,), False), f"#print axioms _root_.{check}"))
    if answer_name:
        cmd = "#eval" if evaluates else "#print"
        footer_lines.append((_Line("answer", answer_name), f"{cmd} {answer_name}"))
    sentinel = f"lean-solve audit complete {nonce}"
    footer_lines.append((_Line("sentinel"), f'#print "{sentinel}"'))
    start = _lines(head) + _lines(pre) + _lines(body) + 2  # line after the blank separator
    footer = {start + i: line for i, (line, _) in enumerate(footer_lines)}
    text = head + pre + body + "\n" + "\n".join(cmd for _, cmd in footer_lines) + "\n"
    return _Audit(text, _lines(head), _lines(pre), _lines(body), footer, sentinel, decls)


_PRIVATE = re.compile(r"^_private\.(?:.*?\.)?\d+\.")


def _printed_parts(name: str) -> tuple[str, ...] | None:
    """Components of a name as `#print axioms` prints it; private names lose their prefix."""
    return split_name(_PRIVATE.sub("", name, count=1))


def _map_back(audit: _Audit, m: Message, last: tuple[int, int]) -> tuple[str, Message]:
    """Where a message came from ('code', 'pre', 'footer'), with its line in the submitted code.
    A range that runs on into the appended lines ends at the end of the code (`last`), so no
    position of ours is ever shown as the user's."""
    if m.in_header or m.line <= audit.code_header_lines:
        return "code", m
    if m.line <= audit.code_header_lines + audit.pre_lines:
        return "pre", m
    if audit.in_body(m.line):
        shift = audit.pre_lines
        end_line, end_col, text = m.end_line, m.end_column, m.text
        if end_line is not None:
            end_line -= shift
            if end_line > audit.code_header_lines + audit.code_lines:
                end_line, end_col = last
                text = _UNEXPECTED_FOOTER_TOKEN.sub("unexpected end of the code", text)
        return "code", Message(m.severity, m.line - shift, m.column, text, end_line, end_col, m.in_header)
    return "footer", m


def _end_of_code(code: str) -> tuple[int, int]:
    """(line, column) just after the last character of the code, in Lean's convention."""
    stripped = code.rstrip("\n")
    return stripped.count("\n") + 1, len(stripped) - (stripped.rfind("\n") + 1)


_UNEXPECTED_FOOTER_TOKEN = re.compile(r"^unexpected token '(#print|#eval|theorem)'")


def verify(code: str | bytes, checker: LeanChecker, *, header: str | None = None,
           target: Target | None = None, answer_name: str | None = None, policy: Policy | None = None,
           timeout_s: float | None = None) -> Verdict:
    """Check `code` with `checker` and apply every rule above. Never raises for bad code."""
    policy = policy or Policy()
    text, problem = validate_input(code, checker.max_input_bytes)
    if problem is not None:
        return Verdict(False, [problem], CheckResult(status="invalid_input", detail=problem, backend=checker.name))
    # Lean starts up while the code is lexed, screened and audited below; it reads nothing before
    # `checker.check` writes the audited text, and is killed unfed if that never comes
    checker.prestart()
    try:
        return _verify_text(text, checker, header, target, answer_name, policy, timeout_s)
    finally:
        checker.cancel_prestart()


def _verify_text(text: str, checker: LeanChecker, header: str | None, target: Target | None,
                 answer_name: str | None, policy: Policy, timeout_s: float | None) -> Verdict:
    lexed, refused = screen(text)  # the header is the caller's, trusted; the code is not
    if lexed is not None and not lexed.tokens:
        problem = ("the code is empty (nothing but whitespace and comments): there is nothing to verify"
                   if text.strip() else "the code is empty: there is nothing to verify")
        return Verdict(False, [problem], CheckResult(status="invalid_input", detail=problem, backend=checker.name))
    if refused:
        return Verdict(False, refused, CheckResult(status="refused", detail=refused[0], backend=checker.name))
    evaluates = getattr(checker, "evaluates", True)
    audit = build_audit(text, target=target, answer_name=answer_name, evaluates=evaluates, lexed=lexed)
    raw = checker.check(audit.text, header=header, timeout_s=timeout_s)
    missed = _unaudited(audit, raw)
    if missed and raw.completed:
        # Lean declared something the scanner did not see: audit it too, by Lean's own names
        audit = build_audit(text, target=target, answer_name=answer_name, evaluates=evaluates,
                            nonce=audit.sentinel.rsplit(" ", 1)[-1], extra=missed, lexed=lexed)
        first_s = raw.elapsed_s
        raw = checker.check(audit.text, header=header, timeout_s=timeout_s)
        raw.elapsed_s += first_s  # the time is the verdict's, both runs
    return _judge(text, audit, raw, target, policy)


def _unaudited(audit: _Audit, raw: CheckResult) -> list[tuple[str, ...]]:
    """Declarations Lean says the code added (where the backend can tell) that no appended
    `#print axioms` covers."""
    if raw.declarations is None or raw.declaration_axioms is not None:
        return []  # no list, or Lean already audited every name on it
    covered = {line.parts for line in audit.footer.values() if line.kind == "axioms"}
    missed: list[tuple[str, ...]] = []
    for name, line in raw.declarations.items():
        parts = _printed_parts(name) or (name,)
        # line 0: the backend knows the declaration but not where (then only our own are skipped)
        ours = line <= 0 and parts[-1].startswith(("_lean_solve_expected_", "_lean_solve_target_"))
        if (audit.in_body(line) or (line <= 0 and not ours)) and parts not in covered and parts not in missed:
            missed.append(parts)
    return missed


def _judge(text: str, audit: _Audit, raw: CheckResult, target: Target | None, policy: Policy) -> Verdict:
    last = _end_of_code(text)
    first_command = min(line for line, entry in audit.footer.items() if entry.kind != "note")
    code_msgs: list[Message] = []
    footer_msgs: dict[int, list[Message]] = {}
    pre_errors: list[Message] = []
    for m in fold_internal_exceptions(raw.messages):
        where, mapped = _map_back(audit, m, last)
        if where == "code":
            code_msgs.append(mapped)
        elif where == "pre":
            if m.severity == "error":
                pre_errors.append(m)
        elif m.severity == "error" and m.line == first_command and _UNEXPECTED_FOOTER_TOKEN.match(m.text):
            # the code's last command is unfinished and Lean read on into our lines: that is
            # the code's error, at its end
            code_msgs.append(Message("error", last[0], last[1],
                                     _UNEXPECTED_FOOTER_TOKEN.sub("unexpected end of the code", m.text)))
        else:
            footer_msgs.setdefault(m.line, []).append(m)

    axioms: dict[str, list[str]] = {}
    all_axioms: dict[str, list[str]] = {}
    lean_axioms = _lean_audited(audit, raw)
    lean_listed = {_printed_parts(name) for name in raw.declaration_axioms or ()}
    answer: str | None = None
    reasons: list[str] = []
    sentinel_seen = target_failed = False
    for line, entry in audit.footer.items():
        kind, subject = entry.kind, entry.subject
        msgs = footer_msgs.get(line, [])
        errors = [m for m in msgs if m.severity == "error"]
        is_target = subject.startswith("_lean_solve_target_")
        if kind == "axioms" and is_target and target_failed:
            continue  # nothing was proved, so there is nothing to audit
        if kind == "axioms":
            printed = {_printed_parts(n): axs for n, axs in axioms_from_messages(msgs).items()}
            if errors or entry.parts not in printed:
                what = "the target theorem" if is_target else f"`{subject}`"
                why = f": {_short(errors[0].text)}" if errors else (
                    ": Lean printed the axioms of another declaration" if printed else "")
                reasons.append(f"could not audit the axioms of {what}{why}")
                continue
            shown = target.name if target is not None and is_target else subject
            all_axioms[shown] = printed[entry.parts]
            if lean_axioms is not None and not is_target and entry.parts not in lean_listed:
                reasons.append(f"Lean's own list of the declarations the code added lacks `{subject}`, "
                               "so that list cannot be trusted")
            if entry.shown or is_target:
                axioms.setdefault(shown, printed[entry.parts])
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

    if target is not None and raw.completed and not target_failed and not _declares(audit, raw, target):
        reasons.append(f"the code does not declare `{target.name}`: a theorem of that name from the header or a "
                       "library is not the code's proof")
    code_errors = [m for m in code_msgs if m.severity == "error"]
    for d, nxt in zip(audit.body_declarations, audit.body_declarations[1:] + [None]):
        # a theorem whose own lines hold an error failed to elaborate: list no axioms for it
        upto = nxt.line if nxt is not None else 1 << 30
        if any(d.line <= m.line < upto for m in code_errors):
            axioms.pop(d.name, None)

    result = CheckResult(status=raw.status, messages=code_msgs, axioms=axioms, evals=raw.evals,
                         sorry=raw.sorry, elapsed_s=raw.elapsed_s, backend=raw.backend,
                         lean_version=raw.lean_version, detail=raw.detail, goals=raw.goals)
    if raw.declarations is not None:  # Lean's own list, the code's part of it, in the code's lines
        result.declarations = {
            name: (line - audit.pre_lines if line > 0 else 0) for name, line in raw.declarations.items()
            if audit.in_body(line) or (line <= 0 and "_lean_solve_" not in name)}
    first_body_line = audit.code_header_lines + audit.pre_lines
    result.evals = [EvalOutput(e.line - audit.pre_lines if e.line > first_body_line else e.line, e.text)
                    for e in raw.evals if e.line <= audit.code_header_lines or audit.in_body(e.line)]
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
    judged = [*all_axioms.items(), *(lean_axioms or [])]
    if raw.sorry or any("sorryAx" in a for _, a in judged):
        final.append("the proof uses `sorry`")
    for name, axs in judged:
        bad = [a for a in axs if not policy.allows(a) and a != "sorryAx"]
        if bad:
            hint = " (native_decide: pass --allow-native to accept)" if set(bad) & NATIVE_AXIOMS else ""
            final.append(f"`{name}` depends on axioms outside the allow-list: {', '.join(bad)}{hint}")
    if raw.completed and raw.status == "error" and not raw.errors:  # e.g. the REPL's audit failed
        final.append(raw.detail or "Lean reported an error without a message")
    if raw.completed and not sentinel_seen:
        final.append("Lean stopped before the end of the file, so the audit did not run")
    if raw.completed and not code_errors:
        final.extend(reasons)
    elif raw.completed:
        final.extend(r for r in reasons if not r.startswith("could not audit"))
    examples = [d for d in audit.body_declarations if d.kind == "example"]
    if raw.completed and target is None and examples:
        final.append(f"the `example` at line {examples[0].line + audit.code_header_lines} cannot be audited "
                     "for axioms (it has no name): name it `theorem`")
    if raw.completed and target is None and not final and not all_axioms and not lean_axioms:
        final.append("the code declares no named theorem or definition, so nothing was verified "
                     "(an `example` cannot be audited: name it `theorem`)")
    return Verdict(verified=not final, reasons=_dedupe(final), check=result, answer=answer)


def _declares(audit: _Audit, raw: CheckResult, target: Target) -> bool:
    """Whether the code itself declares the target's name, by the text reading or by Lean's own
    list of what the code added (a declaration made by a macro is in the latter only)."""
    if any(d.parts == target.parts for d in audit.body_declarations):
        return True
    return any(_printed_parts(name) == target.parts for name, line in (raw.declarations or {}).items()
               if audit.in_body(line))


def _lean_audited(audit: _Audit, raw: CheckResult) -> list[tuple[str, list[str]]] | None:
    """The axioms Lean itself collected for every declaration the code added (repl), by the name
    to show; None where the backend lists names only, or none."""
    if raw.declaration_axioms is None:
        return None
    nonce = audit.sentinel.rsplit(" ", 1)[-1]
    ours = {f"_lean_solve_expected_{nonce}", f"_lean_solve_target_{nonce}"}
    return [(render_name(parts) if (parts := _printed_parts(name)) else name, axs)
            for name, axs in raw.declaration_axioms.items() if name not in ours]


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
