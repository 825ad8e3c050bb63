"""A local stand-in for Anthropic's Admin API (the analytics cost endpoint and API keys): the
SDK talks real HTTP to it. Bodies are built from the SDK's own types' fields and checked
against them, so a shape the SDK would not read fails here first."""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from anthropic.types.beta.organization.analytics import (
    BetaAnalyticsCostItem,
    BetaAnalyticsUsageItem,
)
from anthropic.types.beta.organization.analytics.beta_analytics_cost_group import (
    BetaAnalyticsCostGroup,
)
from anthropic.types.beta.organization.analytics.beta_analytics_usage_group import (
    BetaAnalyticsUsageGroup,
)
from anthropic.types.organization import APIKey

ADMIN_KEY = "sk-ant-admin01-test-key-not-real"


def cost_item(
    day: str,
    amount_cents: str,
    *,
    workspace_id: str | None = "wrkspc_01Prod",
    model: str | None = "test-sonnet",
    api_key_id: str | None = "apikey_01TriageKey",
    cost_type: str | None = "tokens",
    list_amount_cents: str | None = None,
    next_day: str | None = None,
) -> dict[str, Any]:
    """One BetaAnalyticsCostItem of a 1d bucket grouped by workspace, model, key and cost type
    (every other group field null, as the API sends them)."""
    group: dict[str, Any] = {name: None for name in BetaAnalyticsCostGroup.model_fields}
    group.update(workspace_id=workspace_id, model=model, api_key_id=api_key_id, cost_type=cost_type)
    item = {
        "starting_at": f"{day}T00:00:00Z",
        "ending_at": f"{next_day or _next(day)}T00:00:00Z",
        "group": group,
        "cost": {
            "amount": amount_cents,
            "currency": "USD",
            "list_amount": list_amount_cents or amount_cents,
            "requests": None,  # null when grouped by cost_type
        },
    }
    BetaAnalyticsCostItem.model_validate(item)
    return item


def usage_item(
    day: str,
    *,
    uncached_input: int = 0,
    output: int = 0,
    write_5m: int = 0,
    write_1h: int = 0,
    read: int = 0,
    requests: int | None = 1,
    workspace_id: str | None = "wrkspc_01Prod",
    model: str | None = "test-sonnet",
    api_key_id: str | None = "apikey_01TriageKey",
    service_tier: str | None = "standard",
) -> dict[str, Any]:
    """One BetaAnalyticsUsageItem of a 1d bucket grouped by workspace, model, key and tier."""
    group: dict[str, Any] = {name: None for name in BetaAnalyticsUsageGroup.model_fields}
    group.update(
        workspace_id=workspace_id, model=model, api_key_id=api_key_id, service_tier=service_tier
    )
    item = {
        "starting_at": f"{day}T00:00:00Z",
        "ending_at": f"{_next(day)}T00:00:00Z",
        "group": group,
        "usage": {
            "uncached_input_tokens": uncached_input,
            "output_tokens": output,
            "cache_creation": {
                "ephemeral_5m_input_tokens": write_5m,
                "ephemeral_1h_input_tokens": write_1h,
            },
            "cache_read_input_tokens": read,
            "total_tokens": uncached_input + output + write_5m + write_1h + read,
            "requests": requests,
            "server_tool_use": {"web_search_requests": 0},
        },
    }
    BetaAnalyticsUsageItem.model_validate(item)
    return item


def _next(day: str) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def cost_page(
    *items: dict[str, Any], next_page: str | None = None, has_more: bool | None = None
) -> dict[str, Any]:
    """A SyncReportPageCursor page."""
    return {
        "data": list(items),
        "has_more": bool(next_page) if has_more is None else has_more,
        "next_page": next_page,
        "data_refreshed_at": "2026-11-26T06:00:00Z",
    }


def api_key_body(api_key_id: str, status: str) -> dict[str, Any]:
    body = {
        "id": api_key_id,
        "type": "api_key",
        "name": "triage-bot",
        "status": status,
        "created_at": "2026-10-01T09:00:00Z",
        "created_by": {"id": "user_01Admin", "type": "user"},
        "expires_at": None,
        "partial_key_hint": "sk-ant-api03-R2D...igAA",
        "principal": None,
        "scope": {"type": "workspace", "workspace_id": "wrkspc_01Prod"},
    }
    APIKey.model_validate(body)
    return body


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


USAGE_PATH = "/v1/organizations/analytics/usage"


@dataclass
class FakeAdminApi:
    """Replies in order; the usage endpoint has its own queue (empty pages by default)."""

    url: str = ""
    replies: list[Reply] = field(default_factory=list)
    usage_replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def reply(self, *replies: Reply | dict[str, Any]) -> None:
        self.replies.extend(r if isinstance(r, Reply) else Reply(body=r) for r in replies)

    def reply_usage(self, *replies: Reply | dict[str, Any]) -> None:
        self.usage_replies.extend(r if isinstance(r, Reply) else Reply(body=r) for r in replies)

    @property
    def cost_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] != USAGE_PATH]


@pytest.fixture
def admin_api() -> Iterator[FakeAdminApi]:
    fake = FakeAdminApi()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            fake.requests.append(
                {
                    "method": self.command,
                    "path": parts.path,
                    "query": parse_qs(parts.query, keep_blank_values=True),
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": json.loads(raw) if raw else None,
                }
            )
            queue = fake.usage_replies if parts.path == USAGE_PATH else fake.replies
            reply = queue.pop(0) if queue else Reply(body=cost_page())
            payload = json.dumps(reply.body or {}).encode()
            self.send_response(reply.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.send_header("request-id", "req_fake_admin")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _answer
        do_POST = _answer

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
def admin_on(settings: Any, admin_api: FakeAdminApi) -> FakeAdminApi:
    settings.ANTHROPIC_ADMIN_KEY = ADMIN_KEY
    settings.ANTHROPIC_ADMIN_BASE_URL = admin_api.url
    settings.ANTHROPIC_ADMIN_MAX_RETRIES = 0
    settings.ANTHROPIC_ADMIN_TIMEOUT_SECONDS = 5.0
    return admin_api
