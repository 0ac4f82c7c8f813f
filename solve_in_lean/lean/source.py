"""Lean source text handling that every backend shares: input validation, the header split,
and a comment- and string-blind view of the code for the verification rules."""

from __future__ import annotations

import re


def validate_input(code: str | bytes, max_bytes: int) -> tuple[str, str | None]:
    """Return (text, problem). `problem` is one sentence when the input must not reach Lean."""
    if isinstance(code, bytes):
        if len(code) > max_bytes:
            return "", f"input is {len(code):,} bytes, over the limit of {max_bytes:,} bytes"
        try:
            code = code.decode("utf-8")
        except UnicodeDecodeError as e:
            return "", f"input is not valid UTF-8 (byte {e.start}: {code[e.start:e.start + 1]!r})"
    size = len(code.encode("utf-8", errors="surrogatepass"))
    if size > max_bytes:
        return "", f"input is {size:,} bytes, over the limit of {max_bytes:,} bytes"
    if "\x00" in code:
        return "", f"input contains a NUL byte at offset {code.index(chr(0))}; Lean source is text"
    try:
        code.encode("utf-8")
    except UnicodeEncodeError as e:
        return "", f"input contains an unpaired surrogate at offset {e.start}; it is not valid UTF-8"
    return code, None


_HEADER_LINE = re.compile(r"^\s*(prelude|import\s+\S.*)\s*$")


def split_header(code: str) -> tuple[str, str]:
    """Split leading `prelude`/`import` lines (and blank/comment lines among them) from the body.

    Imports must come first in a Lean file, so anything we insert before the user's
    declarations goes right after this header. Returns (header, body) with
    header + body == code.
    """
    lines = code.splitlines(keepends=True)
    cut = 0
    in_block = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if in_block:
            if "-/" in stripped:
                in_block = False
            continue
        if stripped.startswith("/-") and "-/" not in stripped[2:]:
            in_block = True
            continue
        if _HEADER_LINE.match(line):
            cut = i + 1
            continue
        if not stripped or stripped.startswith("--") or (stripped.startswith("/-") and stripped.endswith("-/")):
            continue
        break
    return "".join(lines[:cut]), "".join(lines[cut:])


_CHAR_LIT = re.compile(r"'(?:\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)|[^'\\\n])'")


def _is_name_char(c: str) -> bool:
    """Characters that may end a Lean identifier, so a following ' is a prime (h', x''), not a char."""
    return c.isalnum() or c in "_'!?." or "\u2080" <= c <= "\u209c"


def mask_comments_and_strings(code: str) -> str:
    """Replace comments, string and char literals by spaces, keeping offsets and newlines.

    Lets text rules (refused commands, declared names) ignore what Lean ignores. Block
    comments nest in Lean, and so they do here.
    """
    out = list(code)
    i, n = 0, len(code)

    def blank(a: int, b: int) -> None:
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = code[i]
        if code.startswith("--", i):
            j = code.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif code.startswith("/-", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if code.startswith("/-", j):
                    depth, j = depth + 1, j + 2
                elif code.startswith("-/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c == '"':
            j = i + 1
            while j < n and code[j] != '"':
                j += 2 if code[j] == "\\" else 1
            blank(i, j + 1)
            i = j + 1
        elif c == "'" and (i == 0 or not _is_name_char(code[i - 1])) and (m := _CHAR_LIT.match(code, i)):
            blank(i, m.end())
            i = m.end()
        else:
            i += 1
    return "".join(out)


_NAME = r"[^\s:(){}\[\]⦃⦄,]+"
_DECL = re.compile(
    r"^[ \t]*(?:@\[[^\]]*\][ \t]*)?(?:(?:private|protected|noncomputable|nonrec|partial|unsafe)[ \t]+)*"
    rf"(theorem|lemma|def|abbrev|instance|opaque|axiom)[ \t]+({_NAME})",
    re.MULTILINE,
)
_SCOPE = re.compile(r"^[ \t]*(namespace|section|mutual|end)\b[ \t]*([^\s]*)", re.MULTILINE)


def declared_names(code: str, kinds: tuple[str, ...] = ("theorem", "lemma")) -> list[str]:
    """Full names of the top-level declarations of the given kinds, tracking `namespace`s.

    A text reading, used only to decide which declarations to ask Lean about
    (`#print axioms`); Lean's answers are what the verdict rests on.
    """
    masked = mask_comments_and_strings(code)
    events = [(m.start(), "decl", m.group(1), m.group(2)) for m in _DECL.finditer(masked)]
    events += [(m.start(), "scope", m.group(1), m.group(2)) for m in _SCOPE.finditer(masked)]
    stack: list[tuple[str, str]] = []  # (kind, name) of open namespaces/sections
    names: list[str] = []
    for _, what, kind, name in sorted(events):
        if what == "scope":
            if kind in ("namespace", "section", "mutual"):
                stack.append((kind, name))
            elif stack:
                stack.pop()
            continue
        if kind not in kinds:
            continue
        if name.startswith("_root_."):
            full = name[len("_root_."):]
        else:
            prefix = [n for k, n in stack if k == "namespace" and n]
            full = ".".join(prefix + [name])
        if full not in names:
            names.append(full)
    return names


def line_count(text: str) -> int:
    """Number of lines `text` occupies when another text is appended after a newline."""
    return text.count("\n") + (0 if text.endswith("\n") or not text else 1)
