"""dlt source for the GitClear API v1 (`docs/sources.md`, section 3), dataset `raw_gitclear`.

Tables: `pull_requests`, `commits` and `tags` from the Audits API (50 records a page, a date range
per request; incremental on the record's main date with a `lookback_days` lag, because a pull
request opened before the last run may have merged since), and `report_points` from the Reports API
(`defect_detected_count`, `mean_hours_to_resolved`: weekly series kept for reconciliation, each
point dated by the `end_date` in its `url` since its `x` label has no year). Timestamps are read
in both forms GitClear emits: `YYYY-MM-DD HH:MM:SS UTC` and ISO 8601 with `Z`. Record fields of
pull requests and tags are inferred by the contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from urllib.parse import parse_qs, urlparse

import dlt
from dlt.sources import DltResource

from dora_pipeline.sources import fields
from dora_pipeline.sources.batches import TypedBatches, schema_marker
from dora_pipeline.sources.http import ApiClient, PageGuard, SourceError, SourceRecordError, stream_concurrently
from dora_pipeline.sources.rejections import convert_each

SOURCE = "gitclear"
DEFAULT_BASE_URL = "https://www.gitclear.com/api/v1"
PER_PAGE = 50
REPORT_SEGMENTS = ("defect_detected_count", "mean_hours_to_resolved")
AUDIT_KEYS = {"pull_requests": "number", "commits": "sha", "tags": "name"}


def _ts(value, record: str, field: str) -> datetime | None:
    return fields.parse_timestamp(SOURCE, value, record, field)


@dlt.source(name=SOURCE, max_table_nesting=0)
def gitclear_source(
    resource_paths: list = dlt.config.value,
    api_token: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    team_slug: str = "all-contributors",
    start_date: str | None = None,
    lookback_days: float = 30.0,
    max_concurrent_requests: int = 8,
) -> list[DltResource]:
    start = fields.parse_timestamp(SOURCE, start_date, "configuration", "sources.gitclear.start_date") or (
        datetime.now(UTC) - timedelta(days=365)
    )
    settings = (base_url, api_token, fields.as_list(resource_paths), max(1, int(max_concurrent_requests)))
    lag = lookback_days * 86400

    def cursor(field: str) -> dlt.sources.incremental:
        return dlt.sources.incremental(field, initial_value=start, lag=lag)

    return [
        pull_requests(settings, cursor("created_at")),
        commits(settings, cursor("authored_at")),
        tags(settings, cursor("tagged_at")),
        report_points(settings, team_slug, start),
    ]


def _api(settings: tuple) -> tuple[ApiClient, list[str], int]:
    """A client bounded to `max_concurrent_requests` in flight, the repositories and that bound:
    the repositories are read side by side, each one's pages in order."""
    base_url, token, paths, parallel = settings
    if not paths:
        raise SourceError(SOURCE, "no resource paths configured", hint="set sources.gitclear.resource_paths")
    if not token:
        raise SourceError(SOURCE, "no api token configured", hint="set sources.gitclear.api_token")
    return ApiClient(SOURCE, base_url, {"Authorization": f"Bearer {token}"}, max_in_flight=parallel), paths, parallel


def _audit_pages(settings: tuple, resource_type: str, since: datetime) -> Iterator[tuple[str, list[dict]]]:
    api, paths, parallel = _api(settings)

    def audits(path: str) -> list[list[dict]]:
        pages, page, guard = [], 1, PageGuard(SOURCE, f"audits of {path}", key=AUDIT_KEYS[resource_type])
        while True:
            params = {
                "resource_path": path,
                "resource_type": resource_type,
                "page": page,
                "start_date": since.date().isoformat(),
                "end_date": datetime.now(UTC).date().isoformat(),
            }
            body = api.request("GET", "/audits", params)
            records = body.get(resource_type) if isinstance(body, dict) else None
            if not isinstance(records, list):
                raise SourceError(SOURCE, f"audits of {path} answered no {resource_type!r} list")
            guard.check(page, records)
            pages.append(records)
            if not records or page * PER_PAGE >= int(body.get("total_count") or 0):
                return pages
            page += 1

    with api:
        for path, pages in zip(paths, stream_concurrently(audits, paths, parallel), strict=True):
            for records in pages:
                yield path, records


PULL_REQUEST_COLUMNS = {
    "repo": {"data_type": "text"},
    "number": {"data_type": "bigint"},
    "title": {"data_type": "text"},
    "state": {"data_type": "text"},
    "created_at": {"data_type": "timestamp"},
    "merged_at": {"data_type": "timestamp"},
    "closed_at": {"data_type": "timestamp"},
    "first_commit_at": {"data_type": "timestamp"},
    "merge_sha": {"data_type": "text"},
    "head_branch": {"data_type": "text"},
    "author": {"data_type": "text"},
}
_PULL_REQUEST_BATCHES = TypedBatches(PULL_REQUEST_COLUMNS, ("repo", "number"))


@dlt.resource(primary_key=("repo", "number"), write_disposition="merge", columns=PULL_REQUEST_COLUMNS)
def pull_requests(
    settings: tuple,
    cursor: dlt.sources.incremental[datetime] = dlt.sources.incremental("created_at"),  # noqa: B008 - dlt idiom
) -> Iterator[list[dict]]:
    yield schema_marker()
    yield from _PULL_REQUEST_BATCHES.regroup(
        convert_each(SOURCE, "pull_requests", records, partial(_pull_request_row, path), "number", path)
        for path, records in _audit_pages(settings, "pull_requests", cursor.start_value)
    )


def _author(record: dict, description: str) -> str | None:
    contributor = record.get("contributor")
    if contributor is None:
        return None
    if not isinstance(contributor, dict):
        raise SourceRecordError(SOURCE, description, "contributor", f"is not an object: {contributor!r}"[:200])
    return contributor.get("username")


def _pull_request_row(path: str, pr: dict) -> dict:
    record = f"pull request {pr.get('number')} of {path}"
    number = fields.require(SOURCE, pr.get("number"), record, "number")
    return {
        "repo": pr.get("repo") or path,
        "number": fields.parse_int(SOURCE, number, record, "number"),
        "title": pr.get("title"),
        "state": pr.get("state"),
        "created_at": _ts(pr.get("created_at"), record, "created_at"),
        "merged_at": _ts(pr.get("merged_at"), record, "merged_at"),
        "closed_at": _ts(pr.get("closed_at"), record, "closed_at"),
        "first_commit_at": _ts(pr.get("first_commit_at"), record, "first_commit_at"),
        "merge_sha": pr.get("merge_sha"),
        "head_branch": pr.get("head_branch"),
        "author": _author(pr, record),
    }


COMMIT_COLUMNS = {
    "sha": {"data_type": "text"},
    "repo": {"data_type": "text"},
    "authored_at": {"data_type": "timestamp"},
    "message": {"data_type": "text"},
    "author": {"data_type": "text"},
    "diff_delta": {"data_type": "double"},
}
_COMMIT_BATCHES = TypedBatches(COMMIT_COLUMNS, "sha")


@dlt.resource(primary_key="sha", write_disposition="merge", columns=COMMIT_COLUMNS)
def commits(
    settings: tuple,
    cursor: dlt.sources.incremental[datetime] = dlt.sources.incremental("authored_at"),  # noqa: B008 - dlt idiom
) -> Iterator[list[dict]]:
    yield schema_marker()
    yield from _COMMIT_BATCHES.regroup(
        convert_each(SOURCE, "commits", records, partial(_commit_row, path), "sha", path)
        for path, records in _audit_pages(settings, "commits", cursor.start_value)
    )


def _commit_row(path: str, c: dict) -> dict:
    record = f"commit {c.get('sha')} of {path}"
    return {
        "sha": str(fields.require(SOURCE, c.get("sha"), record, "sha")),
        "repo": c.get("repo") or path,
        "authored_at": _ts(c.get("authored_at"), record, "authored_at"),
        "message": c.get("message"),
        "author": _author(c, record),
        "diff_delta": fields.parse_float(SOURCE, c.get("diff_delta"), record, "diff_delta"),
    }


TAG_COLUMNS = {
    "repo": {"data_type": "text"},
    "name": {"data_type": "text"},
    "sha": {"data_type": "text"},
    "tagged_at": {"data_type": "timestamp"},
}
_TAG_BATCHES = TypedBatches(TAG_COLUMNS, ("repo", "name"))


@dlt.resource(primary_key=("repo", "name"), write_disposition="merge", columns=TAG_COLUMNS)
def tags(
    settings: tuple,
    cursor: dlt.sources.incremental[datetime] = dlt.sources.incremental("tagged_at"),  # noqa: B008 - dlt idiom
) -> Iterator[list[dict]]:
    yield schema_marker()
    yield from _TAG_BATCHES.regroup(
        convert_each(SOURCE, "tags", records, partial(_tag_row, path), "name", path)
        for path, records in _audit_pages(settings, "tags", cursor.start_value)
    )


def _tag_row(path: str, tag: dict) -> dict:
    record = f"tag {tag.get('name')} of {path}"
    return {
        "repo": tag.get("repo") or path,
        "name": str(fields.require(SOURCE, tag.get("name"), record, "name")),
        "sha": tag.get("sha"),
        "tagged_at": _ts(tag.get("tagged_at"), record, "tagged_at"),
    }


@dlt.resource(
    primary_key=("resource_path", "segment", "week_end"),
    write_disposition="merge",
    columns={
        "resource_path": {"data_type": "text"},
        "segment": {"data_type": "text"},
        "series": {"data_type": "text"},
        "week_end": {"data_type": "date"},
        "label": {"data_type": "text"},
        "value": {"data_type": "double"},
    },
)
def report_points(settings: tuple, team_slug: str, start: datetime) -> Iterator[list[dict]]:
    yield schema_marker()
    api, paths, parallel = _api(settings)

    def report(asked: tuple[str, str]) -> dict:
        path, segment = asked
        params = {
            "resource_path": path,
            "team_slug": team_slug,
            "segment_by": segment,
            "start_date": start.date().isoformat(),
            "end_date": datetime.now(UTC).date().isoformat(),
        }
        return api.request("GET", "/reports", params)

    asked = [(path, segment) for path in paths for segment in REPORT_SEGMENTS]
    with api:
        for (path, segment), body in zip(asked, stream_concurrently(report, asked, parallel), strict=True):
            rows = []
            for series, points in (body.get("series_segments") or {}).items():
                for point in points:
                    end = parse_qs(urlparse(point.get("url") or "").query).get("end_date", [None])[0]
                    if end is None:
                        raise SourceError(SOURCE, f"report point {point.get('x')!r} of {path} has no end_date")
                    rows.append(
                        {
                            "resource_path": path,
                            "segment": segment,
                            "series": series,
                            "week_end": end,
                            "label": point.get("x"),
                            "value": fields.parse_float(
                                SOURCE, point.get("y"), f"report point {point.get('x')!r} of {path}", "y"
                            ),
                        }
                    )
            yield rows
