"""A local stand-in for the Anthropic Messages API: the SDK talks real HTTP to it."""

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def message_body(
    text: str = "The agent wants to restart the api deployment.",
    *,
    input_tokens: int = 1234,
    output_tokens: int = 321,
    cache_creation_input_tokens: int = 50,
    cache_read_input_tokens: int = 2048,
    model: str = "claude-sonnet-5",
    stop_reason: str = "end_turn",
) -> dict[str, Any]:
    """Shaped exactly like a Messages API response."""
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": text}] if text else [],
        "model": model,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": cache_creation_input_tokens,
            "cache_read_input_tokens": cache_read_input_tokens,
        },
    }


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


@dataclass
class FakeAnthropic:
    url: str
    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def reply(self, *replies: Reply) -> None:
        self.replies.extend(replies)


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            fake.requests.append(
                {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "raw": raw.decode(),
                }
            )
            reply = fake.replies.pop(0) if fake.replies else Reply(body=message_body())
            if reply.delay:
                time.sleep(reply.delay)
            payload = json.dumps(reply.body or {}).encode()
            try:
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.send_header("request-id", "req_fake")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def assist_on(settings: Any, fake_anthropic: FakeAnthropic) -> FakeAnthropic:
    settings.ANTHROPIC_API_KEY = "sk-ant-test-key-not-real"
    settings.ANTHROPIC_BASE_URL = fake_anthropic.url
    settings.ASSIST_MODEL = "claude-sonnet-5"
    settings.ASSIST_MAX_TOKENS = 700
    settings.ASSIST_MAX_RETRIES = 0
    settings.ASSIST_TIMEOUT_SECONDS = 5.0
    return fake_anthropic
