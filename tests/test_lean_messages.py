"""Parsing Lean's JSON messages and positions; the source helpers the audit relies on."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from solve_in_lean.lean.base import CheckResult, Message
from solve_in_lean.lean.messages import (axioms_from_messages, eval_outputs, message_from_json,
                                         parse_json_lines, uses_sorry)
from solve_in_lean.lean.source import declared_names, mask_comments_and_strings, split_header

severities = st.sampled_from(["error", "warning", "information"])
texts = st.text(min_size=0, max_size=200)
positions = st.fixed_dictionaries({"line": st.integers(1, 10_000), "column": st.integers(0, 500)})


def lean_json(severity, text, pos, end):
    return {"severity": severity, "data": text, "pos": pos, "endPos": end, "fileName": "<stdin>",
            "caption": "", "isSilent": False, "keepFullRange": False, "kind": "[anonymous]"}


@given(st.lists(st.tuples(severities, texts, positions, st.none() | positions), max_size=20))
def test_json_lines_round_trip(msgs):
    stdout = "\n".join(json.dumps(lean_json(*m)) for m in msgs)
    parsed, stray = parse_json_lines(stdout)
    assert stray == []
    assert [(p.severity, p.text, p.line, p.column) for p in parsed] == \
        [(s, t, pos["line"], pos["column"]) for s, t, pos, _ in msgs]
    for p, (_, _, _, end) in zip(parsed, msgs):
        assert p.end_line == (None if end is None else end["line"])


@given(severities, texts, positions, st.integers(0, 200))
def test_header_shift(severity, text, pos, header_lines):
    m = message_from_json(lean_json(severity, text, pos, pos), header_lines=header_lines)
    if header_lines and pos["line"] <= header_lines:
        assert m.in_header and m.line == pos["line"]
    else:
        assert not m.in_header and m.line == pos["line"] - header_lines >= 1
        assert m.end_line == m.line
    assert m.column == pos["column"]


@given(st.text(max_size=300))
def test_non_json_output_is_kept_not_lost(noise):
    noise = noise.replace("\r", "")
    lines = [ln for ln in noise.splitlines() if ln.strip()]
    parsed, stray = parse_json_lines(noise)
    assert len(parsed) + len(stray) <= len(lines)
    assert all(isinstance(m, Message) for m in parsed)


def test_message_with_missing_fields_gets_safe_defaults():
    m = message_from_json({"severity": "weird", "message": {"nested": 1}})
    assert (m.severity, m.line, m.column) == ("error", 1, 0)
    assert "nested" in m.text


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.']{0,15}", fullmatch=True)


@given(st.dictionaries(names, st.lists(names, max_size=4, unique=True), max_size=6))
def test_axiom_messages(table):
    msgs = []
    for decl, axioms in table.items():
        text = (f"'{decl}' depends on axioms: [{', '.join(axioms)}]" if axioms
                else f"'{decl}' does not depend on any axioms")
        msgs.append(Message("information", 1, 0, text))
    assert axioms_from_messages(msgs) == table


def test_sorry_detection():
    warn = [Message("warning", 3, 0, "declaration uses 'sorry'")]
    assert uses_sorry(warn, {})
    assert uses_sorry([], {"t": ["propext", "sorryAx"]})
    assert not uses_sorry([Message("information", 1, 0, "sorry is a word")], {"t": []})


def test_eval_outputs_follow_eval_lines():
    code = "def x := 1\n#eval x\n-- #eval not this\n#eval x + 1\n"
    msgs = [Message("information", 2, 0, "1"), Message("information", 3, 0, "no"),
            Message("information", 4, 0, "2\n")]
    assert [(e.line, e.text) for e in eval_outputs(code, msgs)] == [(2, "1"), (4, "2")]


@given(st.text(alphabet=st.sampled_from(list("ab -/\"'\\\n{}x")), max_size=200))
@settings(max_examples=300)
def test_masking_keeps_offsets_and_lines(code):
    masked = mask_comments_and_strings(code)
    assert len(masked) == len(code)
    assert [i for i, c in enumerate(masked) if c == "\n"] == [i for i, c in enumerate(code) if c == "\n"]


@given(st.lists(st.sampled_from(["prelude", "import Mathlib", "import Aesop", "", "-- note",
                                 "theorem t : True := trivial", "def x := 1"]), max_size=10))
def test_split_header_is_a_prefix_split(lines):
    code = "\n".join(lines)
    head, body = split_header(code)
    assert head + body == code
    assert all(ln.strip() in ("prelude", "") or ln.strip().startswith(("import", "--"))
               for ln in head.splitlines())


def test_declared_names_track_namespaces():
    code = ("namespace A\ntheorem x : P := p\nnamespace B\nlemma y : Q := q\nend B\nend A\n"
            "theorem _root_.C.z : R := r\n/- theorem hidden : S := s -/\nprivate theorem w : T := t\n")
    assert declared_names(code) == ["A.x", "A.B.y", "C.z", "w"]


def test_check_result_json_round_trip():
    r = CheckResult(status="error", messages=[Message("error", 2, 3, "bad", 2, 5)],
                    axioms={"t": ["propext"]}, sorry=True, elapsed_s=0.5, backend="kernel")
    assert CheckResult.from_dict(json.loads(json.dumps(r.to_dict()))).to_dict() == r.to_dict()
