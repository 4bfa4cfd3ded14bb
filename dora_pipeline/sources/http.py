"""HTTP plumbing every source shares: one httpx client per source, retries through tenacity.

Retried: transport errors, 429 and 5xx, and success answers whose body is not JSON (a truncated
or garbled response), honouring `Retry-After` (seconds or a date) or else the rate-limit window's
`RateLimit-Reset`, else exponential back-off with jitter. An answer saying the window's quota is
spent (`RateLimit-Remaining: 0`) makes the client wait for the window's end before the next
request; with requests in flight side by side, no more go out than the quota has left. Anything
else fails at once with a `SourceHTTPError` that names the source, the request and the server's
own message. Headers (and so tokens) are never copied into an error or a log line.
"""

from __future__ import annotations

import functools
import ipaddress
import ssl
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import dlt
import httpx
import tenacity

RETRYABLE_STATUS = {429, 500, 502, 503, 504}
T = TypeVar("T")
R = TypeVar("R")


_REQUESTS_SENT: Counter[str] = Counter()
_REQUESTS_LOCK = threading.Lock()


def requests_sent(source: str) -> int:
    """HTTP requests this process has sent for `source`, retries included (the progress line)."""
    with _REQUESTS_LOCK:
        return _REQUESTS_SENT[source]


class SourceError(Exception):
    """A failure in one source, worded for the person running the pipeline."""

    def __init__(self, source: str, message: str, hint: str | None = None):
        super().__init__(f"{source}: {message}")
        self.source = source
        self.hint = hint


class SourceHTTPError(SourceError):
    def __init__(self, source: str, request: str, status: int, detail: str):
        hint = {
            401: "check the source's api token",
            403: "check the token's permissions and the account's licence",
            404: "check the configured ids and base_url",
        }.get(status)
        super().__init__(source, f"{request} answered HTTP {status}: {detail}", hint)
        self.status = status


class SourceRecordError(SourceError):
    """A record the source sent that cannot be loaded as it is."""

    def __init__(self, source: str, record: str, field: str, problem: str):
        super().__init__(source, f"{record}: field '{field}' {problem}")
        self.record = record
        self.field = field
        self.problem = problem


def user_message(exc: BaseException) -> str:
    """The clearest one-line account of `exc`: the innermost SourceError in its chain (dlt wraps
    a source's errors in its own), else the exception's class and first line."""
    found: BaseException | None = None
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, SourceError):
            found = current
        current = current.__cause__ or current.__context__
    if found is not None:
        return str(found).strip().splitlines()[0]
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


class _Retryable(Exception):
    def __init__(self, response: httpx.Response):
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class _Undecodable(Exception):
    """A success answer whose body is not JSON: cut off or garbled on the way, so worth a retry."""


class PageGuard:
    """Ends pagination that would never end: a page that repeats an earlier one (an API that keeps
    answering the same page, or a next-page cursor stuck in place) is an error, never a loop."""

    def __init__(self, source: str, what: str, key: str = "id"):
        self.source, self.what, self.key = source, what, key
        self._seen: dict[int, object] = {}

    def check(self, page: object, records: list) -> None:
        ids = tuple(str(r.get(self.key)) if isinstance(r, dict) else repr(r) for r in records)
        if not ids:
            return
        fingerprint = hash(ids)
        if fingerprint in self._seen:
            raise SourceError(
                self.source,
                f"{self.what}: page {page} repeats page {self._seen[fingerprint]}; "
                "the API's pagination does not advance",
            )
        self._seen[fingerprint] = page


def concurrently(fetch: Callable[[T], R], items: Sequence[T], max_workers: int) -> list[R]:
    """`fetch` of every item, at most `max_workers` at a time, results in the items' order. For
    requests of one record each, which are independent: against a real API, latency rather than
    work sets their pace. The first error stops the rest and is raised."""
    if max_workers <= 1 or len(items) <= 1:
        return [fetch(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items))) as pool:
        return list(pool.map(fetch, items))


def stream_concurrently(fetch: Callable[[T], R], items: Iterable[T], max_workers: int) -> Iterator[R]:
    """`concurrently` for large answers consumed one by one: results in the items' order, as they
    arrive, with at most `max_workers` fetched ahead of the consumer, so memory holds a few
    answers, never all of them. `items` may be a generator: it is advanced in the consumer's
    thread, so what it does (a look-up in the destination) stays there."""
    if max_workers <= 1 or (isinstance(items, Sequence) and len(items) <= 1):
        yield from (fetch(item) for item in items)
        return
    remaining = iter(items)
    workers = min(max_workers, len(items)) if isinstance(items, Sequence) else max_workers
    with ThreadPoolExecutor(max_workers=workers) as pool:
        ahead = deque(pool.submit(fetch, item) for _, item in zip(range(max_workers), remaining, strict=False))
        while ahead:
            result = ahead.popleft().result()
            following = next(remaining, _END)
            if following is not _END:
                ahead.append(pool.submit(fetch, following))
            yield result


_END = object()


def _retry_after(exc: BaseException | None) -> float | None:
    """Seconds the server asked to wait: `Retry-After` (seconds or an HTTP date), else the end
    of the rate-limit window (`RateLimit-Reset`, an epoch, which GitLab sends when it leaves
    `Retry-After` out)."""
    if not isinstance(exc, _Retryable):
        return None
    headers = exc.response.headers
    value = headers.get("retry-after", "").strip()
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    return _until_reset(headers)


def _until_reset(headers: httpx.Headers) -> float | None:
    try:
        return max(0.0, float(headers.get("ratelimit-reset", "")) - time.time())
    except ValueError:
        return None


class _RateWindow:
    """The server's rate-limit window as its answers describe it (`RateLimit-Remaining`,
    `RateLimit-Reset`), shared by every thread of one client. The first request of a window goes
    alone, to learn the quota; after it, no more go out at once than the quota has left, and
    while it is spent the next request waits for the window's end instead of meeting a 429. A
    server that sends no such headers, or a quota without the window's end, is never waited for
    after its first answer."""

    def __init__(self, max_wait_seconds: float):
        self._changed = threading.Condition()
        self._known = False  # an answer has described the current window
        self._remaining: int | None = None
        self._reset_at = 0.0
        self._in_flight = 0
        self._max_wait = max_wait_seconds

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._changed:
            while True:
                now = time.time()
                if self._remaining is not None and now >= self._reset_at:
                    self._known, self._remaining = False, None  # a new window
                if not self._known and self._in_flight:
                    self._changed.wait(1.0)  # the window's first request is out
                elif self._remaining is not None and self._remaining <= self._in_flight:
                    self._changed.wait(self._reset_at - now)
                else:
                    break
            self._in_flight += 1
        try:
            yield
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def observe(self, headers: httpx.Headers) -> None:
        remaining = headers.get("ratelimit-remaining", "").strip()
        until_reset = _until_reset(headers)
        with self._changed:
            self._known = True
            if remaining.isdigit() and until_reset is not None:  # a quota without its end is no window
                reset_at = time.time() + min(self._max_wait, until_reset)
                same_window = self._remaining is not None and abs(reset_at - self._reset_at) < 0.5
                # answers of one window may arrive out of order: the lowest quota left is the true one
                self._remaining = min(self._remaining, int(remaining)) if same_window else int(remaining)
                self._reset_at = reset_at
            self._changed.notify_all()


AUTH_HEADERS = {"authorization", "private-token"}
REDACTED = "[redacted]"
# Every credential a client of this process sends, so text kept from an API (a rejected record's
# payload) can be cleaned of whatever a server echoed back.
KNOWN_SECRETS: set[str] = set()


def redact_known_secrets(text: str) -> str:
    for secret in sorted(KNOWN_SECRETS, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _setting(source: str, key: str, default: float) -> float:
    """`sources.<source>.<key>` from dlt's configuration (or SOURCES__<SOURCE>__<KEY>)."""
    value = dlt.config.get(f"sources.{source}.{key}", float)
    return default if value is None else float(value)


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client of the process: building one loads the CA bundle (about
    20 ms), which a client made per page of records paid again and again."""
    return httpx.create_ssl_context()


def require_safe_transport(source: str, base_url: str) -> None:
    """Tokens travel only over https, except to this machine (the sandbox) or where the user
    explicitly allows plain http (`sources.<source>.allow_insecure_http`)."""
    url = httpx.URL(base_url)
    if url.scheme == "https":
        return
    if url.scheme == "http":
        try:
            loopback = url.host == "localhost" or ipaddress.ip_address(url.host).is_loopback
        except ValueError:
            loopback = False
        if loopback or dlt.config.get(f"sources.{source}.allow_insecure_http", bool):
            return
    raise SourceError(
        source,
        f"base_url {url.scheme}://{url.host} is not https: the token would travel in clear text",
        hint=f"use an https:// base_url, or set SOURCES__{source.upper()}__ALLOW_INSECURE_HTTP=true",
    )


class ApiClient:
    """A JSON API client bound to one source, its base URL and its auth headers.

    Per source and configurable (`sources.<source>.<key>`): `request_timeout_seconds` (30) for
    one request, `max_attempts` (6) and `retry_budget_seconds` (300) for all the retries of one
    request together, `retry_backoff_seconds` (0.5) for the first wait, which doubles (with
    jitter) up to a minute unless the server says `Retry-After`. Whatever a server sends back,
    the auth header values never reach an error: some gateways echo the rejected credentials in
    their error body.
    """

    def __init__(
        self,
        source: str,
        base_url: str,
        headers: dict[str, str],
        timeout_seconds: float | None = None,
        max_attempts: int | None = None,
        max_backoff_seconds: float = 60.0,
        max_in_flight: int | None = None,
    ):
        self.source = source
        # requests of this client in flight at once, whichever threads send them
        self._bound = threading.BoundedSemaphore(max_in_flight) if max_in_flight else nullcontext()
        require_safe_transport(source, base_url)
        timeout = timeout_seconds or _setting(source, "request_timeout_seconds", 30.0)
        attempts = int(max_attempts or _setting(source, "max_attempts", 6))
        budget = _setting(source, "retry_budget_seconds", 300.0)
        first_wait = _setting(source, "retry_backoff_seconds", 0.5)
        self._secrets = sorted(
            {
                part
                for name, value in headers.items()
                if name.lower() in AUTH_HEADERS
                for part in (value, value.split(" ", 1)[-1])
                if len(part) >= 4
            },
            key=len,
            reverse=True,
        )
        KNOWN_SECRETS.update(self._secrets)
        self._client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, verify=_tls())
        backoff = tenacity.wait_exponential_jitter(initial=first_wait, max=max_backoff_seconds, jitter=first_wait * 2)

        def wait(state: tenacity.RetryCallState) -> float:
            asked = _retry_after(state.outcome.exception() if state.outcome else None)
            return min(max_backoff_seconds, backoff(state) if asked is None else asked)

        self._retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type((_Retryable, _Undecodable, httpx.TransportError)),
            wait=wait,
            stop=tenacity.stop_after_attempt(attempts) | tenacity.stop_after_delay(budget),
            reraise=True,
        )
        self.max_attempts = attempts
        self._window = _RateWindow(max_backoff_seconds)

    def request(
        self, method: str, path: str, params: Any = None, headers: dict | None = None, json_body: Any = None
    ) -> Any:
        """Send one request (retrying what is transient) and return its decoded JSON body.
        `json_body` is sent as the request's JSON body (only read-only queries, so a retry is safe)."""
        return self.exchange(method, path, params, headers, json_body)[0]

    def exchange(
        self, method: str, path: str, params: Any = None, headers: dict | None = None, json_body: Any = None
    ) -> tuple[Any, httpx.Headers]:
        """Like `request`, also returning the response headers (pagination lives there)."""
        what = f"{method} {path}"
        try:
            return self._retrying.copy()(self._send, method, path, params, headers, json_body)
        except _Retryable as exc:
            raise SourceHTTPError(self.source, what, exc.response.status_code, self._detail(exc.response)) from None
        except _Undecodable:
            raise SourceError(self.source, f"{what} answered a body that is not JSON (after retries)") from None
        except httpx.TransportError as exc:
            host = self._client.base_url.netloc.decode()
            raise SourceError(self.source, f"{what} could not reach {host}: {type(exc).__name__}") from None

    def _send(
        self, method: str, path: str, params: Any, headers: dict | None, json_body: Any
    ) -> tuple[Any, httpx.Headers]:
        with _REQUESTS_LOCK:
            _REQUESTS_SENT[self.source] += 1
        with self._bound, self._window.slot():  # waits while the window's quota is spent
            response = self._client.request(method, path, params=params, headers=headers, json=json_body)
            self._window.observe(response.headers)
        if response.status_code in RETRYABLE_STATUS:
            raise _Retryable(response)
        if response.is_error:
            raise SourceHTTPError(self.source, f"{method} {path}", response.status_code, self._detail(response))
        try:
            return response.json(), response.headers
        except ValueError:
            raise _Undecodable() from None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _detail(self, response: httpx.Response) -> str:
        """The server's own message, with every credential this client sends removed."""
        return self.redact(_detail(response))[:200]

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason_phrase or "").strip()
    if isinstance(body, dict):
        for key in ("Message", "message", "error", "response_detail", "Error"):
            if body.get(key):
                return str(body[key])
    return str(body)
