"""A stand-in for Slack's Web API and response URLs: a local HTTP server recording each call
and answering the way Slack does (shapes from Slack's method reference)."""

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BOT_TOKEN = "xoxb-test-0000-opsdash"


@dataclass
class Call:
    method: str  # "chat.postMessage", ..., or "response_url"
    args: dict[str, Any]
    authorization: str


@dataclass
class FakeSlack:
    host: str = "127.0.0.1"
    calls: list[Call] = field(default_factory=list)
    # Slack user id -> users.info "user" object (profile.email matters).
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Web API method -> (HTTP status, body) answered once, then normal service resumes.
    fail_next: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ts = 0
        self.server = ThreadingHTTPServer((self.host, 0), _handler(self))
        self.url = f"http://{self.host}:{self.server.server_address[1]}"
        self.api_url = f"{self.url}/api/"
        self.response_url = f"{self.url}/hooks/actions/T0OPSDASH/8126004853711/Xk9pQ2vR7sT1uW3yZ5aB"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [c.args for c in self.calls if c.method == method]

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    def answer(self, method: str, args: dict[str, Any], authorization: str) -> tuple[int, Any]:
        with self._lock:
            self.calls.append(Call(method, args, authorization))
            if method == "response_url":
                return 200, "ok"
            if method in self.fail_next:
                return self.fail_next.pop(method)
            if authorization != f"Bearer {BOT_TOKEN}":
                return 200, {"ok": False, "error": "invalid_auth"}
            if method == "chat.postMessage":
                self._ts += 1
                ts = f"1764120000.{self._ts:06d}"
                return 200, {
                    "ok": True,
                    "channel": args["channel"],
                    "ts": ts,
                    "message": {"type": "message", "text": args.get("text"), "ts": ts},
                }
            if method == "chat.update":
                return 200, {
                    "ok": True,
                    "channel": args["channel"],
                    "ts": args["ts"],
                    "text": args.get("text"),
                }
            if method == "views.open":
                view = args["view"]
                return 200, {"ok": True, "view": {"id": "V0REJECT01", **view}}
            if method == "users.info":
                user = self.users.get(args.get("user", ""))
                if user is None:
                    return 200, {"ok": False, "error": "user_not_found"}
                return 200, {"ok": True, "user": user}
            return 200, {"ok": False, "error": "unknown_method"}


def _handler(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self, body: bytes) -> None:
            parts = urlsplit(self.path)
            args: dict[str, Any] = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if body:
                if (self.headers.get("Content-Type") or "").startswith("application/json"):
                    args.update(json.loads(body))
                else:
                    args.update({k: v[0] for k, v in parse_qs(body.decode()).items()})
            if parts.path.startswith("/api/"):
                method = parts.path.removeprefix("/api/")
            elif parts.path.startswith("/hooks/"):
                method = "response_url"
            else:
                self.send_error(404)
                return
            status, answer = fake.answer(method, args, self.headers.get("Authorization", ""))
            raw = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header(
                "Content-Type",
                "text/plain" if isinstance(answer, str) else "application/json; charset=utf-8",
            )
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            self._serve(b"")

        def do_POST(self) -> None:
            self._serve(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    return Handler
