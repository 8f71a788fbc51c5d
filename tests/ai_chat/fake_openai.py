"""A fake OpenAI-compatible chat-completions server on loopback, in a thread of the test process.

Tests script its answers in order (`reply`, `stream`, `error`, `hang`, `raw`) or give it a
`responder` that answers every request; it records every request body it received.
"""

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[BaseHTTPRequestHandler], None]


def completion_body(
    content: str | None = "",
    tool_calls: list[tuple[str, str, Any]] | None = None,
    *,
    model: str = "gpt-4o-mini",
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
            for call_id, name, arguments in tool_calls
        ]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _chunk(model: str, delta: dict[str, Any] | None, usage: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": None}],
        "usage": usage,
    }


def stream_chunks(
    pieces: list[str],
    tool_calls: list[tuple[str, str, Any]] | None = None,
    *,
    model: str = "gpt-4o-mini",
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
) -> list[dict[str, Any]]:
    chunks = [_chunk(model, {"role": "assistant", "content": piece}) for piece in pieces]
    for index, (call_id, name, arguments) in enumerate(tool_calls or []):
        text = json.dumps(arguments)
        half = len(text) // 2
        head = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": text[:half]}}
        chunks.append(_chunk(model, {"tool_calls": [head]}))
        chunks.append(_chunk(model, {"tool_calls": [{"index": index, "function": {"arguments": text[half:]}}]}))
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
    chunks.append(_chunk(model, None, {**usage, "total_tokens": prompt_tokens + completion_tokens}))
    return chunks


class FakeOpenAI:
    def __init__(self) -> None:
        self.script: deque[Answer] = deque()
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []  # each request's Authorization header
        self.responder: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake._lock:
                    fake.requests.append(body)
                    fake.authorizations.append(self.headers.get("Authorization"))
                    answer = fake.script.popleft() if fake.script else None
                if answer is None and fake.responder is not None:
                    payload = fake.responder(body)
                    answer = fake._json(200, payload)
                if answer is None:
                    answer = fake._json(500, {"error": {"message": "the fake server has no answer scripted"}})
                with suppress(BrokenPipeError, ConnectionResetError):
                    answer(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]) -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> Answer:
        body = json.dumps(payload).encode()
        return lambda handler: self._send(
            handler, status, body, {"Content-Type": "application/json", **(headers or {})}
        )

    def reply(
        self, content: str | None = "", tool_calls: list[tuple[str, str, Any]] | None = None, **usage: Any
    ) -> None:
        self.script.append(self._json(200, completion_body(content, tool_calls, **usage)))

    def error(self, status: int, message: str = "upstream error", headers: dict[str, str] | None = None) -> None:
        self.script.append(self._json(status, {"error": {"message": message, "type": "server_error"}}, headers))

    def raw(self, body: bytes, content_type: str = "application/json") -> None:
        self.script.append(lambda handler: self._send(handler, 200, body, {"Content-Type": content_type}))

    def hang(self, seconds: float) -> None:
        def answer(handler: BaseHTTPRequestHandler) -> None:
            time.sleep(seconds)
            self._send(handler, 200, json.dumps(completion_body("too late")).encode(), {})

        self.script.append(answer)

    def stream(
        self,
        pieces: list[str],
        tool_calls: list[tuple[str, str, Any]] | None = None,
        *,
        pause: float = 0.0,
        lines: list[str] | None = None,
        **usage: Any,
    ) -> None:
        """Server-sent events of `pieces` (then tool calls and usage); `lines` replaces them raw."""
        events = lines or [f"data: {json.dumps(chunk)}" for chunk in stream_chunks(pieces, tool_calls, **usage)]

        def answer(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", "text/event-stream")
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            for line in [*events, "data: [DONE]"]:
                data = f"{line}\n\n".encode()
                handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                handler.wfile.flush()
                time.sleep(pause)
            handler.wfile.write(b"0\r\n\r\n")

        self.script.append(answer)


@contextmanager
def fake_openai_server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    try:
        yield fake
    finally:
        fake.close()
