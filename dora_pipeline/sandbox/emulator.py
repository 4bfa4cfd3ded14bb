"""What every emulator shares: the world view at `as_of`, a request log and injectable faults."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from dora_pipeline.sandbox.fault_profile import FaultProfile
from dora_pipeline.sandbox.world import World


def iso_ms(value: datetime | None) -> str | None:
    """A UTC timestamp as the APIs emit it: ISO 8601 with milliseconds and `Z`."""
    # isoformat's first 19 characters are strftime's "%Y-%m-%dT%H:%M:%S" at half the cost: the
    # emulators format millions of timestamps at the benchmark's sizes
    return None if value is None else value.isoformat(timespec="seconds")[:19] + ".000Z"


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
    # GitLab.com's rate limit: at most `requests_per_window` requests per window of
    # `window_seconds` (aligned to the clock), every answer carrying `RateLimit-Limit`,
    # `RateLimit-Remaining` and `RateLimit-Reset` (an epoch); over the quota, a 429 without
    # `Retry-After`, as GitLab sometimes sends
    requests_per_window: int | None = None
    window_seconds: float = 1.0
    # requests another client with the same token makes in the window of the next request
    quota_spent_by_others: int = 0
    # GitLab's GraphQL complexity limit, as the most merge requests one query may ask for
    graphql_max_merge_requests: int | None = None
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
        self.set_fault_profile(FaultProfile(), "")
        self.set_as_of(as_of)

    def set_fault_profile(self, profile: FaultProfile, emulator: str) -> None:
        """Faults drawn at random for every request from now on (see `fault_profile.py`)."""
        self.profile = profile
        self._draws: random.Random = profile.generator(emulator)
        self.injected: Counter[str] = Counter()
        self.received = 0  # requests since the profile was set, answered or not
        self.window: tuple[float, int] = (0.0, 0)  # start of the rate-limit window, requests in it
        self.over_quota = 0  # 429s answered because the window's quota was spent
        self.in_flight = self.most_in_flight = 0  # requests being answered at once
        self.pages_served: dict[tuple, bytes] = {}  # the last page of each paginated list

    def draw_fault(self) -> str | None:
        return self.profile.draw(self._draws)

    def set_as_of(self, as_of: datetime) -> None:
        self.as_of = as_of
        self.view = self.world.view(as_of)
        self.failures_by_cause: dict[str, list] = {}
        for failure in self.view.failures:
            self.failures_by_cause.setdefault(failure.caused_by, []).append(failure)

    def warm(self) -> None:
        """Build now what this emulator otherwise builds on the first request at this `as_of` (a
        benchmark times the client, not the sandbox's one-off indexing)."""

    def record(self, request: Request, body: Any = None) -> None:
        self.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                # a repeated key (Gearset's `EnvironmentIds`) keeps every value, in a list
                "params": {
                    key: values if len(values) > 1 else values[0]
                    for key in request.query_params
                    if (values := request.query_params.getlist(key))
                },
                "body": body,  # a JSON body (GraphQL's query), so the request can be replayed
                # the version asked for (never the credentials), so a request can be replayed
                "api_version": request.headers.get("api-version"),
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


class _QuietResets(logging.Filter):
    """A connection the sandbox drops on purpose is not an error of the sandbox."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_QuietResets())

STATUS_FAULTS = {
    "rate_limit": (429, "rate limit exceeded"),
    "rate_limit_without_retry_after": (429, "rate limit exceeded"),
    "server_error": (503, "service unavailable"),
}


async def _whole_body(receive) -> list[dict]:
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body"):
            return messages


async def _until_disconnect(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _record_list(body: Any) -> list | None:
    """The records of an answer: the body when it is a list, else its first list of objects."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                return value
    return None


def with_faults(app, state: EmulatorState):
    """ASGI wrapper for faults of the wire rather than of one API.

    Knobs a test turns (`Faults`): a response whose body is cut in half while
    `truncate_next_bodies` lasts (the status says 200, the JSON is incomplete), a 401 that echoes
    the rejected credentials when `echo_credentials` is on, and `mutate`. And the seeded profile
    (`FaultProfile`): for each request it may answer 429 (with or without `Retry-After`) or 503
    at once, answer late (`slow`) or only after the client gave up (`hang`), drop the connection
    half-way through the body (`reset`), cut the body (`truncate`), repeat the previous page of a
    paginated list (`repeat_page`) or repeat one record within the answer (`duplicate_record`).
    """

    async def wrapped(scope, receive, send):
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        state.received += 1
        state.in_flight += 1
        state.most_in_flight = max(state.most_in_flight, state.in_flight)
        try:
            await _answer(scope, receive, send)
        finally:
            state.in_flight -= 1

    async def _answer(scope, receive, send):
        quota, over = _count_against_quota(state)
        if over:
            state.over_quota += 1
            await send({"type": "http.response.start", "status": 429, "headers": quota})
            await send({"type": "http.response.body", "body": b"Retry later"})
            return
        fault = state.draw_fault()
        if fault in STATUS_FAULTS:
            state.injected[fault] += 1
            status, message = STATUS_FAULTS[fault]
            headers = [(b"content-type", b"application/json")]
            if fault == "rate_limit":
                headers.append((b"retry-after", str(state.profile.retry_after_seconds).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": json.dumps({"message": message}).encode()})
            return
        request_messages = await _whole_body(receive)
        if fault == "hang":
            state.injected[fault] += 1
            try:  # answer nothing until the client gives up (or far too late)
                await asyncio.wait_for(_until_disconnect(receive), state.profile.hang_seconds)
                return
            except TimeoutError:
                pass
        elif fault == "slow":
            state.injected[fault] += 1
            await asyncio.sleep(state.profile.slow_seconds)
        replay = iter(request_messages)

        async def replayed():
            return next(replay, None) or await receive()

        truncate = state.take_truncation() or fault == "truncate"
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
            if start.get("status") == 200 and out:
                out = _bad_data(scope, out, fault, state)
            if start.get("status") == 401 and state.faults.echo_credentials:
                out = json.dumps({"message": f"401 Unauthorized: rejected credentials {credentials!r}"}).encode()
            if truncate:
                if fault == "truncate":
                    state.injected[fault] += 1
                out = out[: max(1, len(out) // 2)]
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers += [*quota, (b"content-length", str(len(out)).encode())]
            await send({**start, "headers": headers})
            if fault == "reset":  # half the promised body, then the connection is dropped
                state.injected[fault] += 1
                await send({"type": "http.response.body", "body": out[: len(out) // 2], "more_body": True})
                return
            await send({"type": "http.response.body", "body": out})

        await app(scope, replayed, rewrite)

    return wrapped


def _count_against_quota(state: EmulatorState) -> tuple[list[tuple[bytes, bytes]], bool]:
    """Count this request against the rate-limit window: its `RateLimit-*` headers, and whether
    it is over the window's quota (none of either when no window is set)."""
    limit = state.faults.requests_per_window
    if limit is None:
        return [], False
    size = state.faults.window_seconds
    start = math.floor(time.time() / size) * size
    used = (state.window[1] if state.window[0] == start else 0) + 1 + state.faults.quota_spent_by_others
    state.faults.quota_spent_by_others = 0
    state.window = (start, used)
    headers = [
        (b"ratelimit-limit", str(limit).encode()),
        (b"ratelimit-remaining", str(max(0, limit - used)).encode()),
        (b"ratelimit-reset", str(math.ceil(start + size)).encode()),
    ]
    return headers, used > limit


def _bad_data(scope, out: bytes, fault: str | None, state: EmulatorState) -> bytes:
    """The answer with the test's `mutate` applied and the profile's bad-data fault, if any."""
    if state.faults.mutate is not None:
        out = json.dumps(state.faults.mutate(scope["path"], json.loads(out))).encode()
    params = [(k, v) for k, v in _query(scope) if k != "page"]
    page = dict(_query(scope)).get("page")
    if page is not None:
        where = (scope["path"], tuple(params))
        earlier = state.pages_served.get(where)
        state.pages_served[where] = out
        if fault == "repeat_page" and earlier is not None and page not in ("", "1"):
            state.injected[fault] += 1
            return earlier
    if fault == "duplicate_record":
        body = json.loads(out)
        records = _record_list(body)
        if records:
            state.injected[fault] += 1
            records.append(dict(records[len(records) // 2]))
            return json.dumps(body).encode()
    return out


def _query(scope) -> list[tuple[str, str]]:
    return parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True)
