"""The one batch runner: per-item error records, the machine's failures stop the batch (a real
file-size limit, `ulimit -f`, stands in for a full disk and needs no root), resumes count right."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from solve_in_lean.batch import InfrastructureError, open_store, run_batch
from solve_in_lean.errors import InputError
from solve_in_lean.records import read_jsonl

ITEMS = [{"id": i} for i in ("a", "b", "c")]


def test_an_item_that_raises_is_recorded_and_retried_only_when_asked(tmp_path):
    out = tmp_path / "out.jsonl"

    def flaky(item):
        if item["id"] == "b":
            raise ValueError("bad problem")
        return {"value": item["id"]}

    first = run_batch(ITEMS, out, flaky)
    assert (first.total, first.done_now, first.errors, first.finished) == (3, 3, 1, 3)
    assert "ValueError: bad problem" in first.records["b"]["error"]
    again = run_batch(ITEMS, out, flaky)
    assert (again.resumed, again.done_now, again.errors) == (3, 0, 1)
    fixed = run_batch(ITEMS, out, lambda item: {"value": item["id"]}, retry_errors=True)
    # the file now holds b twice (error, then result); counts go by each item's latest record
    assert (fixed.total, fixed.resumed, fixed.done_now, fixed.errors, fixed.finished) == (3, 2, 1, 0, 3)
    assert fixed.records["b"] == {"value": "b", "id": "b"}


def test_a_cache_that_cannot_be_written_stops_the_batch_and_records_nothing(tmp_path):
    import sqlite3

    out = tmp_path / "out.jsonl"

    def full(item):
        if item["id"] == "b":
            raise sqlite3.OperationalError("database or disk is full")
        return {"ok": True}

    with pytest.raises(InfrastructureError, match="the batch stopped: the generation cache cannot be written"):
        run_batch(ITEMS, out, full)
    assert [r["id"] for r in read_jsonl(out)] == ["a"]  # b is not a failed item: nothing recorded for it
    done = run_batch(ITEMS, out, lambda item: {"ok": True})
    assert (done.resumed, done.done_now, done.errors, done.finished) == (1, 2, 0, 3)


def test_a_missing_backend_stops_the_batch_instead_of_failing_every_item(tmp_path):
    from solve_in_lean.errors import UnavailableError

    out = tmp_path / "out.jsonl"

    def no_gpu(item):
        raise UnavailableError("the vllm backend needs a CUDA GPU")

    with pytest.raises(UnavailableError, match="CUDA"):
        run_batch(ITEMS, out, no_gpu)
    assert not out.exists()  # no item marked failed: a rerun on a GPU does them all
    with pytest.raises(UnavailableError):
        run_batch(ITEMS, out, no_gpu, workers=2)
    assert not out.exists()


def test_a_damaged_results_file_names_the_line_and_what_to_do(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "a"}\nthis is not json\n{"id": "b"}\n')
    with pytest.raises(InputError, match=r"out.jsonl:2: .*delete or repair that line"):
        open_store(out)
    with pytest.raises(InputError, match=r"out.jsonl:2"):
        run_batch(ITEMS, out, lambda item: {})


LIMITED = textwrap.dedent("""
    import json, resource, signal, sqlite3, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
    from solve_in_lean.batch import InfrastructureError, run_batch
    from solve_in_lean.models.cache import CachedGenerator
    from solve_in_lean.models.base import SamplingParams
    from solve_in_lean.models.scripted import ScriptedGenerator

    out, cache, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    generator = CachedGenerator(ScriptedGenerator(["x" * 50_000]), cache) if cache != "-" else None
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    def fn(item):
        if generator is None:
            return {"text": "y" * 3000}
        return {"chars": len(generator.generate([item["id"]], SamplingParams())[0][0].text)}

    try:
        run_batch([{"id": i} for i in "abcd"], out, fn)
    except InfrastructureError as e:
        print(json.dumps(str(e)))
        sys.exit(2)
""")


def limited(tmp_path, out, cache, limit):
    script = tmp_path / "limited.py"
    script.write_text(LIMITED)
    return subprocess.run([sys.executable, str(script), str(out), str(cache), str(limit)], capture_output=True,
                          text=True, timeout=120)


def test_a_full_disk_stops_at_the_first_failed_write_and_a_rerun_resumes(tmp_path):
    out = tmp_path / "out.jsonl"
    proc = limited(tmp_path, out, "-", 7000)  # room for two records and part of a third
    assert proc.returncode == 2, proc.stderr
    message = json.loads(proc.stdout)
    assert message.startswith("the batch stopped: File too large") and "run the same command again" in message
    assert out.read_bytes().count(b"\n") == 2 and not out.read_bytes().endswith(b"\n")  # a torn third line
    done = run_batch([{"id": i} for i in "abcd"], out, lambda item: {"text": "z"})
    assert (done.resumed, done.done_now, done.errors, done.finished) == (2, 2, 0, 4)
    assert [r["id"] for r in read_jsonl(out, strict=True)] == ["a", "b", "c", "d"]  # torn line gone, none twice


def test_a_full_disk_under_the_generation_cache_is_not_an_item_result(tmp_path):
    out, cache = tmp_path / "out.jsonl", tmp_path / "cache.sqlite"
    proc = limited(tmp_path, out, cache, 120_000)  # the cache (50 KB a completion) fills up first
    assert proc.returncode == 2, proc.stderr
    assert "generation cache cannot be written" in json.loads(proc.stdout)
    records = list(read_jsonl(out)) if out.exists() else []
    assert records and all("error" not in r for r in records)  # what finished is kept, nothing marked failed
