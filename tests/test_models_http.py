"""The http backend against real HTTP servers on 127.0.0.1: the tiny model served through our
OpenAI-compatible server, and small servers that misbehave on purpose (errors, hangs, garbage)."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import pytest

from solve_in_lean.models.base import GenerationError, SamplingParams
from solve_in_lean.models.http_backend import HttpGenerator
from solve_in_lean.models.serve import OpenAIServer
from solve_in_lean.models.transformers_backend import TransformersGenerator

PROMPTS = ["The answer is", "theorem clips (april may : ℕ)", "x"]
CHAT = [{"role": "user", "content": "How many clips?"}]
FAST = {"backoff_s": 0.01, "max_backoff_s": 0.05}

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def local(tiny_model_dir) -> TransformersGenerator:
    return TransformersGenerator(str(tiny_model_dir), batch_size=8)


@pytest.fixture(scope="module")
def served(local):
    server = OpenAIServer(local).start()
    yield server
    server.close()


def client(url: str, **options) -> HttpGenerator:
    return HttpGenerator("tiny", base_url=url, **{**FAST, **options})


def texts(results) -> list[list[str]]:
    return [[c.text for c in cs] for cs in results]


# A tiny server whose answers a test scripts: reply(request) -> (status, body bytes).
class Scripted(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, reply: Callable[[dict], tuple[int, bytes]]) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.reply = reply
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.errors: list[BaseException] = []
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def handle_error(self, request, client_address) -> None:
        """Record instead of printing: a client that gave up leaves a broken pipe behind."""
        self.errors.append(sys.exc_info()[1])


class _ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        """Silence per-request logging."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = {"path": self.path, "body": body, "headers": dict(self.headers)}
        with self.server.lock:
            request["index"] = len(self.server.requests)
            self.server.requests.append(request)
            self.server.in_flight += 1
            self.server.max_in_flight = max(self.server.max_in_flight, self.server.in_flight)
        try:
            status, data = self.server.reply(request)
        finally:
            with self.server.lock:
                self.server.in_flight -= 1
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def scripted():
    servers = []

    def start(reply):
        servers.append(Scripted(reply))
        return servers[-1]

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def ok(text: str = "42", n: int = 1, **extra) -> tuple[int, bytes]:
    choices = [{"index": i, "text": text, "finish_reason": "stop", **extra} for i in range(n)]
    return 200, json.dumps({"choices": choices, "usage": {"prompt_tokens": 3, "completion_tokens": 2}}).encode()


# --- against the tiny model served over HTTP ------------------------------------------------

def test_served_completions_equal_local_generation(served, local):
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=8, seed=4)
    with client(served.url) as remote:
        over_http = remote.generate(PROMPTS, params)
    direct = local.generate(PROMPTS, params)
    assert texts(over_http) == texts(direct)
    assert [c[0].prompt_tokens for c in over_http] == [c[0].prompt_tokens for c in direct]
    assert all(c.finish_reason in ("stop", "length", "empty") for cs in over_http for c in cs)


def test_chat_prompts_use_the_chat_endpoint_and_template(served, local):
    params = SamplingParams(max_new_tokens=8)
    with client(served.url) as remote:
        [[c]] = remote.generate([CHAT], params)
        with pytest.raises(ValueError, match="string prompts only"):
            client(served.url, endpoint="completions").generate([CHAT], params)
    assert c.text == local.generate([CHAT], params)[0][0].text
    assert c.text != local.generate(["How many clips?"], params)[0][0].text


def test_stop_strings_reach_the_server(served, local):
    [[full]] = local.generate(["theorem"], SamplingParams(max_new_tokens=16))
    stop = next(ch for ch in full.text[3:] if ch.isascii() and ch.isalnum())
    with client(served.url) as remote:
        [[c]] = remote.generate(["theorem"], SamplingParams(max_new_tokens=16, stop=(stop,)))
    assert c.text == full.text[:full.text.index(stop)]


# --- servers that misbehave ------------------------------------------------------------------

@pytest.mark.parametrize("status", [500, 503, 429])
def test_retries_after_overload_or_server_error(scripted, status):
    server = scripted(lambda r: (status, b'{"error": "busy"}') if r["index"] == 0 else ok("fine"))
    with client(server.url) as remote:
        [[c]] = remote.generate(["q"], SamplingParams(max_new_tokens=4))
    assert c.text == "fine" and c.error is None
    assert len(server.requests) == 2


def test_gives_up_after_bounded_retries_with_a_clear_error(scripted):
    server = scripted(lambda r: (503, b"down for maintenance"))
    with client(server.url, max_retries=2) as remote:
        with pytest.raises(GenerationError, match=r"failed 3 attempts, the last with HTTP 503"):
            remote.generate(["q"], SamplingParams())
    assert len(server.requests) == 3


def test_unreachable_server_raises_generation_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nobody listens there
    with client(f"http://127.0.0.1:{port}/v1", max_retries=1) as remote:
        with pytest.raises(GenerationError, match="connection failed"):
            remote.generate(["q"], SamplingParams())


def test_hanging_server_times_out(scripted):
    release = threading.Event()
    server = scripted(lambda r: (release.wait(10), ok())[1])
    start = time.monotonic()
    try:
        with client(server.url, timeout_s=0.3, max_retries=1) as remote:
            with pytest.raises(GenerationError, match=r"no answer within 0.3 s"):
                remote.generate(["q"], SamplingParams())
    finally:
        release.set()
    assert time.monotonic() - start < 5
    assert len(server.requests) == 2


def test_malformed_json_fails_only_that_prompt(scripted):
    server = scripted(lambda r: (200, b'{"choices": [{"text": "unterminated')
                      if r["body"]["prompt"] == "bad" else ok("good", n=r["body"]["n"]))
    with client(server.url) as remote:
        results = remote.generate(["fine", "bad", "also fine"], SamplingParams(n=2))
    assert texts(results) == [["good", "good"], ["", ""], ["good", "good"]]
    assert all(c.finish_reason == "error" and "malformed JSON" in c.error for c in results[1])
    assert len(server.requests) == 3  # malformed replies are not retried


@pytest.mark.parametrize("body, message", [
    (b'{"choices": [{"index": 0}]}', "has no text"),
    (b'{"choices": "nope"}', "no list of choices"),
    (b'[1, 2, 3]', "no list of choices"),
    (b'{"choices": []}', "no choices"),
])
def test_replies_missing_fields_become_error_completions(scripted, body, message):
    server = scripted(lambda r: (200, body))
    with client(server.url) as remote:
        [[c]] = remote.generate(["q"], SamplingParams())
    assert c.finish_reason == "error" and message in c.error


def test_client_error_is_not_retried(scripted):
    server = scripted(lambda r: (400, b'{"error": {"message": "prompt too long"}}'))
    with client(server.url) as remote:
        [[c]] = remote.generate(["q"], SamplingParams())
    assert c.finish_reason == "error" and "HTTP 400" in c.error and "prompt too long" in c.error
    assert len(server.requests) == 1


def test_invalid_utf8_bytes_are_replaced_and_flagged(scripted):
    body = b'{"choices": [{"index": 0, "text": "ok \xff\xfe end", "finish_reason": "stop"}]}'
    server = scripted(lambda r: (200, body))
    with client(server.url) as remote:
        [[c]] = remote.generate(["q"], SamplingParams())
    assert c.text == "ok \ufffd\ufffd end"
    assert "invalid UTF-8" in c.error


def test_huge_completion_is_capped_and_flagged(scripted):
    server = scripted(lambda r: ok("x" * 50_000))
    with client(server.url, max_chars=1000) as remote:
        [[c]] = remote.generate(["q"], SamplingParams())
    assert len(c.text) == 1000 and c.finish_reason == "length" and "cut to max_chars=1000" in c.error


def test_oversized_response_is_refused_without_reading_it_all(scripted):
    server = scripted(lambda r: ok("y" * 3_000_000))
    with client(server.url, max_chars=10) as remote:
        [[c]] = remote.generate(["q"], SamplingParams())
    assert c.finish_reason == "error" and "exceeded" in c.error


def test_empty_completion_is_flagged(scripted):
    server = scripted(lambda r: ok(""))
    with client(server.url) as remote:
        [[c]] = remote.generate(["q"], SamplingParams())
    assert c.finish_reason == "empty" and "no text" in c.error


def test_unknown_finish_reason_is_an_error_completion(scripted):
    server = scripted(lambda r: (200, json.dumps({"choices": [
        {"index": 0, "text": "partial", "finish_reason": "content_filter"}]}).encode()))
    with client(server.url) as remote:
        [[c]] = remote.generate(["q"], SamplingParams())
    assert c.finish_reason == "error" and "content_filter" in c.error and c.text == "partial"


# --- what the client sends and reads ---------------------------------------------------------

def test_request_carries_params_seed_and_api_key(scripted, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", "sk-test-123")
    server = scripted(lambda r: ok())
    params = SamplingParams(temperature=0.5, top_p=0.9, max_new_tokens=7, stop=("\n\n",), seed=11)
    with client(server.url, api_key_env="TEST_LLM_KEY") as remote:
        remote.generate(["q"], params)
    [request] = server.requests
    assert request["path"] == "/v1/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test-123"
    body = request["body"]
    assert (body["model"], body["prompt"], body["n"], body["temperature"], body["top_p"], body["max_tokens"],
            body["stop"], body["seed"], body["logprobs"]) == ("tiny", "q", 1, 0.5, 0.9, 7, ["\n\n"], 11, 0)


def test_logprobs_and_token_counts_are_read(scripted):
    def reply(r):
        if r["path"].endswith("/chat/completions"):
            return 200, json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                                 "finish_reason": "length",
                                                 "logprobs": {"content": [{"token": "h", "logprob": -0.5},
                                                                          {"token": "i", "logprob": -1.0}]}}],
                                    "usage": {"prompt_tokens": 9, "completion_tokens": 2}}).encode()
        return ok("abc", logprobs={"tokens": ["a", "bc"], "token_logprobs": [-0.25, -0.5]})
    server = scripted(reply)
    with client(server.url) as remote:
        [[text]], [[chat]] = (remote.generate([p], SamplingParams()) for p in ("q", CHAT))
    assert (text.logprob, text.completion_tokens, text.prompt_tokens) == (-0.75, 2, 3)
    assert (chat.text, chat.finish_reason, chat.logprob, chat.prompt_tokens) == ("hi", "length", -1.5, 9)


def test_server_returning_fewer_choices_than_n_is_asked_again(scripted):
    server = scripted(lambda r: ok(f"answer {r['index']}"))  # one choice, whatever n was asked
    with client(server.url) as remote:
        [cs] = remote.generate(["q"], SamplingParams(n=3, temperature=1.0, seed=5))
    assert [c.text for c in cs] == ["answer 0", "answer 1", "answer 2"]
    seeds = [r["body"]["seed"] for r in server.requests]
    assert seeds[0] == 5 and len(set(seeds)) == 3  # follow-ups use derived seeds, not repeats


def test_concurrency_is_bounded(scripted):
    server = scripted(lambda r: (time.sleep(0.05), ok())[1])
    with client(server.url, concurrency=3) as remote:
        results = remote.generate([f"q{i}" for i in range(12)], SamplingParams())
    assert len(results) == 12
    assert 2 <= server.max_in_flight <= 3


def test_server_refuses_malformed_requests(served):
    import httpx

    with httpx.Client(base_url=served.url, timeout=10) as http:
        assert http.get("/models").json()["data"][0]["id"] == served.generator.model
        for path, body in [("/completions", {"prompt": ["a", "b"]}), ("/chat/completions", {"messages": "hi"}),
                           ("/completions", {"prompt": "a", "temperature": -1}), ("/completions", {})]:
            reply = http.post(path, json=body)
            assert reply.status_code == 400 and "bad request" in reply.json()["error"]["message"], body
        assert http.post("/completions", content=b"{not json", headers={"Content-Type": "application/json"}
                         ).status_code == 400
        assert http.post("/embeddings", json={}).status_code == 404


def test_greedy_n_is_one_request_copied(scripted):
    """`vllm serve` answers greedy n>1 with HTTP 400 (VLLMValidationError): ask once, copy."""
    def vllm_rules(request):
        body = request["body"]
        if body["temperature"] == 0 and body["n"] > 1:
            return 400, json.dumps({"error": {"message": "n must be 1 when using greedy sampling"}}).encode()
        return ok("only answer", n=body["n"])
    server = scripted(vllm_rules)
    with client(server.url) as remote:
        results = remote.generate(["a", "b"], SamplingParams(n=4, temperature=0.0))
    assert [[c.text for c in cs] for cs in results] == [["only answer"] * 4] * 2
    assert all(c.error is None for cs in results for c in cs)
    assert [r["body"]["n"] for r in server.requests] == [1, 1]


def test_served_generator_failure_is_an_http_error_not_a_dropped_connection():
    import httpx

    from solve_in_lean.models.base import Generator

    class Broken(Generator):
        model = "broken"

        def generate(self, prompts, params):
            raise RuntimeError("CUDA error: device-side assert triggered")
    with OpenAIServer(Broken()).start() as server, httpx.Client(base_url=server.url, timeout=10) as http:
        reply = http.post("/completions", json={"prompt": "a"})
    assert reply.status_code == 500 and "device-side assert" in reply.json()["error"]["message"]


def test_served_prompt_too_long_for_the_model_is_a_400(local):
    import httpx

    too_long = " ".join(["word"] * (local.context + 10))
    with OpenAIServer(local).start() as server, httpx.Client(base_url=server.url, timeout=60) as http:
        reply = http.post("/completions", json={"prompt": too_long, "max_tokens": 4})
    assert reply.status_code == 400 and "context holds" in reply.json()["error"]["message"]
