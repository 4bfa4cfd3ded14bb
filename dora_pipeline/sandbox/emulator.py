"""What every emulator shares: the world view at `as_of`, a request log and injectable faults."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request

from dora_pipeline.sandbox.world import World


def iso_ms(value: datetime | None) -> str | None:
    """A UTC timestamp as the APIs emit it: ISO 8601 with milliseconds and `Z`."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class Faults:
    """Knobs tests turn to exercise a client's error paths."""

    running_polls: int = 1
    fail_next_operations: int = 0
    rate_limit_next_requests: int = 0
    retry_after_seconds: float | None = 0.1
    min_poll_interval_seconds: float = 0.0
    # the next N answers lose the second half of their body on the way (a truncated 200)
    truncate_next_bodies: int = 0
    # pagination that never ends: GitLab's X-Next-Page stuck at 2; Multitudes and GitClear
    # answering page 1 for every page under a total far larger than the data
    broken_pagination: bool = False
    # a 401 that echoes the credentials it rejected, as some gateways do
    echo_credentials: bool = False
    # bad records: called with (path, decoded JSON body) of every successful answer, returns the
    # body to send instead (a test breaks one record the way a real API might)
    mutate: Callable[[str, Any], Any] | None = None


class EmulatorState:
    """Mutable state of one emulator; `set_as_of` moves time forward (or back) for every view."""

    def __init__(self, world: World, as_of: datetime, token: str):
        self.world = world
        self.token = token
        self.faults = Faults()
        self.requests: list[dict] = []
        self.set_as_of(as_of)

    def set_as_of(self, as_of: datetime) -> None:
        self.as_of = as_of
        self.view = self.world.view(as_of)
        self.failures_by_cause: dict[str, list] = {}
        for failure in self.view.failures:
            self.failures_by_cause.setdefault(failure.caused_by, []).append(failure)

    def record(self, request: Request) -> None:
        self.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "params": dict(request.query_params),
                "at": time.monotonic(),
            }
        )

    def take_truncation(self) -> bool:
        if self.faults.truncate_next_bodies <= 0:
            return False
        self.faults.truncate_next_bodies -= 1
        return True

    def take_rate_limit(self) -> dict[str, str] | None:
        """Headers of a 429 to answer now, or None to serve the request."""
        if self.faults.rate_limit_next_requests <= 0:
            return None
        self.faults.rate_limit_next_requests -= 1
        after = self.faults.retry_after_seconds
        return {} if after is None else {"Retry-After": str(after)}


def with_faults(app, state: EmulatorState):
    """ASGI wrapper for faults of the wire rather than of one API: a response whose body is cut in
    half while `truncate_next_bodies` lasts (the status says 200, the JSON is incomplete), and a
    401 that echoes the rejected credentials when `echo_credentials` is on."""

    async def wrapped(scope, receive, send):
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        truncate = state.take_truncation()
        sent = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        credentials = sent.get("authorization") or sent.get("private-token") or ""
        start: dict = {}
        body = bytearray()

        async def rewrite(message):
            if message["type"] == "http.response.start":
                start.update(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body"):
                return
            out = bytes(body)
            if start.get("status") == 200 and state.faults.mutate is not None and out:
                out = json.dumps(state.faults.mutate(scope["path"], json.loads(out))).encode()
            if start.get("status") == 401 and state.faults.echo_credentials:
                out = json.dumps({"message": f"401 Unauthorized: rejected credentials {credentials!r}"}).encode()
            if truncate:
                out = out[: max(1, len(out) // 2)]
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(out)).encode())]})
            await send({"type": "http.response.body", "body": out})

        await app(scope, receive, rewrite)

    return wrapped
