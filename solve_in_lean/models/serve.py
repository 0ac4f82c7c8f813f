"""A minimal OpenAI-compatible server over any Generator (stdlib only).

For trying the http backend without vLLM, sharing one loaded model between processes, and
the tests. Requests are answered one at a time (the generator is not assumed thread-safe);
for throughput, serve with `vllm serve` instead. Run:

    python -m solve_in_lean.models.serve --backend transformers --model PATH --port 8000
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .base import Generator, SamplingParams


class OpenAIServer(ThreadingHTTPServer):
    """Serves `generator` on /v1/completions, /v1/chat/completions and /v1/models."""

    daemon_threads = True

    def __init__(self, generator: Generator, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.generator = generator
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL for clients, ending in /v1."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "OpenAIServer":
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="openai-server", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving (if started) and release the port."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
        self.server_close()

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: OpenAIServer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests and notebooks do not want a line per request on stderr."""

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.server.generator.model, "object": "model"}]})
        else:
            self._send(404, _error(f"no route {self.path}"))

    def do_POST(self) -> None:
        path = self.path.rstrip("/")
        if path not in ("/v1/completions", "/v1/chat/completions"):
            self._send(404, _error(f"no route {self.path}"))
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            chat = path.endswith("/chat/completions")
            prompt = body["messages"] if chat else body["prompt"]
            if not (_is_messages(prompt) if chat else isinstance(prompt, str)):
                raise ValueError("'messages' must be a list of {role, content} objects" if chat
                                 else "'prompt' must be one string")
            stop = body.get("stop") or []
            params = SamplingParams(n=body.get("n", 1), temperature=body.get("temperature", 1.0),
                                    top_p=body.get("top_p", 1.0), max_new_tokens=body.get("max_tokens", 256),
                                    stop=[stop] if isinstance(stop, str) else stop, seed=body.get("seed"))
        except (ValueError, KeyError, TypeError) as e:
            self._send(400, _error(f"bad request: {e}"))
            return
        try:
            with self.server.lock:
                [completions] = self.server.generator.generate([prompt], params)
        except Exception as e:  # noqa: BLE001 - a failed generation is an HTTP error, never a dropped connection
            self._send(500, _error(f"{type(e).__name__}: {e}", "server_error"))
            return
        if all(c.finish_reason == "error" for c in completions):
            self._send(400, _error(completions[0].error or "the model could not answer this request"))
            return
        choices = [{"index": i, "finish_reason": "length" if c.finish_reason == "length" else "stop",
                    "logprobs": None,
                    **({"message": {"role": "assistant", "content": c.text}} if chat else {"text": c.text})}
                   for i, c in enumerate(completions)]
        used = sum(c.completion_tokens for c in completions)
        prompt_tokens = completions[0].prompt_tokens
        self._send(200, {"id": f"cmpl-{uuid.uuid4().hex}", "created": int(time.time()),
                         "object": "chat.completion" if chat else "text_completion",
                         "model": self.server.generator.model, "choices": choices,
                         "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": used,
                                   "total_tokens": prompt_tokens + used}})

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _is_messages(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value)


def _error(message: str, kind: str = "invalid_request_error") -> dict:
    return {"error": {"message": message, "type": kind}}


def main(argv: list[str] | None = None) -> None:
    from . import load_generator

    ap = argparse.ArgumentParser(description="Serve a model over an OpenAI-compatible API.")
    ap.add_argument("--backend", default="transformers")
    ap.add_argument("--model", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args(argv)
    server = OpenAIServer(load_generator(args.backend, args.model), args.host, args.port)
    print(f"serving {args.model} ({args.backend}) at {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.server_close()


if __name__ == "__main__":
    main()
