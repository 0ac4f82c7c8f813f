"""InternLM-Math's "Solve this via Lean": the model writes Lean that computes the answer and `#eval`s it;
the value Lean computes is the answer (the *computed* tier: no proof is asked for).

The model's `#eval` is never run. Its code is untrusted, and `#eval` runs compiled code on the checking
machine. Instead the last `#eval`'s expression is taken out (read with Lean's lexer, so an `#eval` in a
comment or string is no `#eval`), every `#`-command is dropped, and the expression becomes a definition
of ours whose type is **ascribed** from an allow-list of plain data types: ℕ, ℤ, ℚ, Bool, String, and
lists and pairs of those. Lean checks the ascription, so an `IO` action, a function or any other type is
an elaboration error, not a value. The whole text then goes through the verifier (`verify.verify`): the
refused-construct scan first (no IO, metaprograms, notation ...), then Lean, and the verifier itself
appends the one `#eval` of our definition (on the bundled kernel, which cannot evaluate, the `#print`
of its body) and reads the printed value. A value counts only when Lean reported no error, no `sorry`
and only allowed axioms.

Float is not on the list: its printed value is rounded, so it cannot be compared exactly with a
reference, and GSM8K/MATH answers are exact. Names that change how values print (`Repr`, `ToString`,
...) are refused too: an instance of them could make Lean print any number for the value it computed.
"""

from __future__ import annotations

import re
import secrets
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from autoformalize.lexer import LexError, Lexed, Token, lex
from solve_in_lean.answers import parse_lean_value
from solve_in_lean.lean.base import LeanChecker
from solve_in_lean.verify import Policy, verify

ALLOWED_TYPES = {"ℕ": "_root_.Nat", "Nat": "_root_.Nat", "ℤ": "_root_.Int", "Int": "_root_.Int",
                 "ℚ": "_root_.Rat", "Rat": "_root_.Rat", "Bool": "_root_.Bool", "String": "_root_.String"}
"""Answer types, by how a model writes them, to the root name our ascription uses (a model's own
`Nat` in a namespace it opened cannot stand in for Lean's)."""
DEFAULT_TYPE = "ℕ"
"""The type assumed when the code states none: Lean's own default for numerals."""
PRINTING_NAMES = frozenset({"Repr", "ToString", "ToFormat", "Format", "repr", "reprPrec", "reprArg", "toString",
                            "Eval", "MonadEval", "EvalInformation", "ToExpr", "formatter", "format"})
"""Names whose instances decide what `#eval` prints: refused so the printed value is the computed one."""
_COMMANDS = frozenset({"def", "theorem", "lemma", "abbrev", "instance", "example", "structure", "inductive",
                       "class", "namespace", "section", "end", "open", "variable", "universe", "set_option",
                       "attribute", "noncomputable", "private", "protected", "partial", "mutual", "opaque",
                       "axiom", "import", "deriving"})
_TYPE_TOKEN = re.compile(r"\s*(ℕ|ℤ|ℚ|Nat|Int|Rat|Bool|String|List|Prod|×|\(|\))")
MAX_TYPE_DEPTH = 4


class Refused(ValueError):
    """Model code the via-Lean mode will not evaluate; the message is the reason, one sentence."""


@dataclass(frozen=True)
class Evaluation:
    """What one completion's code is turned into before Lean sees it."""

    before: str
    """The model's code up to its last `#eval`, every `#`-command removed."""
    after: str
    """The model's code after its last `#eval`, every `#`-command removed."""
    expression: str
    """The expression of its last `#eval`."""
    type: str
    """The allow-listed type ascribed, as the model wrote it (`ℕ`, `List ℤ`, `ℕ × Bool`)."""
    lean_type: str
    """The same with root names (`_root_.List _root_.Int`)."""


@dataclass
class ViaLeanAttempt:
    completion: str
    code: str | None
    expression: str | None = None
    type: str | None = None
    value: str | None = None
    """The value Lean computed, normalized (answers.parse_lean_value) where it is a number."""
    printed: str | None = None
    """What Lean printed for it."""
    reasons: list[str] = field(default_factory=list)


def lean_type(text: str) -> str | None:
    """`text` as a root-named Lean type when it is on the allow-list (a base type, `List T`, `T × U`,
    `Prod T U`, parentheses), else None."""
    tokens: list[str] = []
    pos = 0
    while pos < len(text.rstrip()):
        m = _TYPE_TOKEN.match(text, pos)
        if m is None:
            return None
        tokens.append(m.group(1))
        pos = m.end()
    out, rest = _product(tokens, 0)
    return out if out is not None and not rest else None


def _product(tokens: list[str], depth: int) -> tuple[str | None, list[str]]:
    """T × U × ... (right-associative, as Lean reads `×`)."""
    left, rest = _application(tokens, depth)
    if left is None or not rest or rest[0] != "×":
        return left, rest
    right, rest = _product(rest[1:], depth)
    return (None, rest) if right is None else (f"(_root_.Prod {left} {right})", rest)


def _application(tokens: list[str], depth: int) -> tuple[str | None, list[str]]:
    if depth > MAX_TYPE_DEPTH or not tokens:
        return None, tokens
    head, rest = tokens[0], tokens[1:]
    if head in ALLOWED_TYPES:
        return ALLOWED_TYPES[head], rest
    if head == "(":
        inner, rest = _product(rest, depth + 1)
        return (inner, rest[1:]) if inner is not None and rest[:1] == [")"] else (None, rest)
    if head == "List":
        arg, rest = _application(rest, depth + 1)
        return (None, rest) if arg is None else (f"(_root_.List {arg})", rest)
    if head == "Prod":
        a, rest = _application(rest, depth + 1)
        b, rest = _application(rest, depth + 1) if a is not None else (None, rest)
        return (None, rest) if b is None else (f"(_root_.Prod {a} {b})", rest)
    return None, tokens


def _is_command(tok: Token) -> bool:
    return tok.depth == 0 and (tok.kind == "command" or (
        tok.kind == "ident" and not tok.escaped and tok.text in _COMMANDS))


def _command_spans(lexed: Lexed) -> list[tuple[Token, int]]:
    """Each `#`-command token with the offset where its command ends (the next command's start)."""
    toks = lexed.tokens
    starts = [k for k, t in enumerate(toks) if _is_command(t) or (
        t.text == "@" and k + 1 < len(toks) and toks[k + 1].text == "[" and toks[k + 1].start == t.end)]
    spans = []
    for i, k in enumerate(starts):
        if toks[k].kind == "command":
            end = toks[starts[i + 1]].start if i + 1 < len(starts) else len(lexed.code)
            spans.append((toks[k], end))
    return spans


def _declared_type(lexed: Lexed, name: str) -> str | None:
    """The type written in `def name : T :=` (or abbrev) in the code, if any."""
    toks = lexed.tokens

    def assign(j: int) -> bool:  # `:=` (the lexer gives `:` and `=`)
        return toks[j].text == ":" and j + 1 < len(toks) and toks[j + 1].text == "=" and \
            toks[j + 1].start == toks[j].end

    for k, tok in enumerate(toks[:-3]):
        if tok.text in ("def", "abbrev") and toks[k + 1].text == name and toks[k + 2].text == ":" \
                and not assign(k + 2):
            end = next((j for j in range(k + 3, len(toks)) if assign(j) or _is_command(toks[j])), None)
            if end is not None and end > k + 3 and assign(end):
                return lexed.code[toks[k + 3].start:toks[end - 1].end]
    return None


_ASCRIBED = re.compile(r"^\(\s*(.*)\s:\s*([^:()]+(?:\([^()]*\)[^:()]*)*)\)$", re.S)


def prepare(code: str) -> Evaluation:
    """Split the model's code into its definitions and the expression of its last `#eval`, with the
    allow-listed type to ascribe; Refused (with the reason) when there is no `#eval`, the type is not on
    the allow-list, or the code names what decides how values print."""
    try:
        lexed = lex(code)
    except LexError as e:
        raise Refused(f"the code cannot be read the way Lean reads it ({e})") from None
    for tok in lexed.tokens:
        if tok.kind in ("ident", "name") and any(p in PRINTING_NAMES for p in tok.parts):
            raise Refused(f"the code names `{tok.text}`, which decides how values print; refused, since an "
                          "instance of it could print any value")
    spans = _command_spans(lexed)
    evals = [(tok, end) for tok, end in spans if tok.text in ("#eval", "#eval!")]
    if not evals:
        raise Refused("the code has no `#eval` command (one in a comment or string does not count), so it "
                      "states no answer to compute")
    tok, end = evals[-1]
    expression = lexed.code[tok.end:end].strip()
    if not expression:
        raise Refused("the last `#eval` has no expression")
    before, after, last = [], [], 0
    for t, e in spans:
        (before if t.start <= tok.start else after).append(lexed.code[last:t.start])
        last = e
    after.append(lexed.code[last:])
    type_text = None
    if (m := _ASCRIBED.match(expression)) is not None:
        type_text = m.group(2).strip()
    elif re.fullmatch(r"[A-Za-z_][\w.']*", expression):
        type_text = _declared_type(lexed, expression)
    type_text = " ".join((type_text or DEFAULT_TYPE).split())
    root = lean_type(type_text)
    if root is None:
        allowed = "ℕ, ℤ, ℚ, Bool, String, and lists and pairs of those"
        raise Refused(f"the answer's type `{type_text}` is not one Lean may evaluate here (allowed: {allowed})")
    return Evaluation("".join(before), "".join(after), expression, type_text, root)


def evaluate(code: str, checker: LeanChecker, *, header: str | None = None, policy: Policy | None = None,
             timeout_s: float | None = None) -> tuple[str | None, str | None, list[str]]:
    """(normalized value, Lean's printed text, reasons) for one piece of model code. The value is None
    unless Lean checked everything: our ascribed definition and the model's own (see the module doc)."""
    try:
        ev = prepare(code)
    except Refused as e:
        return None, None, [str(e)]
    name = f"_lean_solve_via_lean_{secrets.token_hex(4)}"
    computable = "" if getattr(checker, "evaluates", True) else "noncomputable "
    # where the `#eval` stood: inside the namespaces and sections the model opened around it
    text = f"{ev.before.rstrip()}\n{computable}def _root_.{name} : {ev.lean_type} :=\n  ({ev.expression})\n{ev.after}"
    verdict = verify(text, checker, header=header, answer_name=f"_root_.{name}", policy=policy, timeout_s=timeout_s)
    if not verdict.verified or verdict.answer is None:
        reasons = verdict.reasons or ["Lean printed no value for the answer"]
        own = f"Lean did not evaluate `{ev.expression}` as {ev.type}"
        return None, verdict.answer, list(dict.fromkeys(own if name in r else r for r in reasons))
    printed = verdict.answer
    return parse_lean_value(printed) or " ".join(printed.split()), printed, []


@dataclass
class ViaLeanResult:
    attempts: list[ViaLeanAttempt] = field(default_factory=list)
    votes: dict[str, int] = field(default_factory=dict)
    answer: str | None = None
    """The majority of the values Lean computed."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def vote(attempts: list[ViaLeanAttempt]) -> ViaLeanResult:
    votes = Counter(a.value for a in attempts if a.value is not None)
    return ViaLeanResult(attempts, dict(votes.most_common()), votes.most_common(1)[0][0] if votes else None)
