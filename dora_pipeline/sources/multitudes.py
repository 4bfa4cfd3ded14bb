"""dlt source for the Multitudes Deployments API (`docs/sources.md`, section 5).

Table `raw_multitudes.deployments`: every record of `GET /deployments` with `includeTests=true`
(tests are kept raw and excluded from metrics downstream), merged on `id`. Records come newest
`deployedAt` first, so paging stops as soon as a page reaches records older than the incremental
cursor (`deployedAt`) less `lookback_days`, and dlt keeps only the records from there on.
Multitudes' dedupe rule (same commits and environment: the latest received wins) is applied in
staging, because a replaced record keeps its old `id` in the warehouse. The `repository` field is
inferred; without it the service is `unknown`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dlt
from dlt.sources import DltResource

from dora_pipeline.sources import fields
from dora_pipeline.sources.batches import TypedBatches, schema_marker
from dora_pipeline.sources.http import ApiClient, PageGuard, SourceError, SourceRecordError
from dora_pipeline.sources.rejections import convert_each

SOURCE = "multitudes"
DEFAULT_BASE_URL = "https://api.developer.multitudes.co"
PAGE_SIZE = 100


@dlt.source(name=SOURCE, max_table_nesting=0)
def multitudes_source(
    api_token: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    start_date: str | None = None,
    lookback_days: float = 30.0,
) -> list[DltResource]:
    start = fields.parse_timestamp(SOURCE, start_date, "configuration", "sources.multitudes.start_date") or (
        datetime.now(UTC) - timedelta(days=365)
    )
    cursor = dlt.sources.incremental("deployed_at", initial_value=start, lag=lookback_days * 86400, row_order="desc")
    return [deployments(base_url, api_token, cursor)]


COLUMNS = {
    "id": {"data_type": "text", "nullable": False},
    "commit_shas": {"data_type": "json"},
    "environment_name": {"data_type": "text"},
    "deployed_at": {"data_type": "timestamp"},
    "title": {"data_type": "text"},
    "tags": {"data_type": "json"},
    "is_test": {"data_type": "bool"},
    "created_at": {"data_type": "timestamp"},
    "repository": {"data_type": "text"},
}
_BATCHES = TypedBatches(COLUMNS, "id")


@dlt.resource(primary_key="id", write_disposition="merge", columns=COLUMNS)
def deployments(
    base_url: str,
    api_token: str,
    cursor: dlt.sources.incremental[datetime] = dlt.sources.incremental("deployed_at"),  # noqa: B008 - dlt idiom
) -> Iterator[list[dict]]:
    yield schema_marker()
    if not api_token:
        raise SourceError(SOURCE, "no api token configured", hint="set sources.multitudes.api_token")
    with ApiClient(SOURCE, base_url, {"Authorization": api_token}) as api:
        yield from _BATCHES.regroup(_pages(api, cursor.start_value))


def _pages(api: ApiClient, since: datetime | None) -> Iterator[list[dict]]:
    """Each page's converted records, newest first, up to the first page that reaches records
    older than `since` (the cursor less the look-back): the rest are older still."""
    page, guard = 1, PageGuard(SOURCE, "GET /deployments")
    while True:
        body = api.request("GET", "/deployments", {"page": page, "pageSize": PAGE_SIZE, "includeTests": "true"})
        records = body.get("deployments") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise SourceError(SOURCE, "GET /deployments answered no 'deployments' list")
        guard.check(page, records)
        rows = convert_each(SOURCE, "deployments", records, _row, "id", service_key=None)
        yield rows
        if not records or page * PAGE_SIZE >= int(body.get("total") or 0):
            return
        if since is not None and any(row["deployed_at"] < since for row in rows):
            return
        page += 1


def _strings(value: object, record: str, field: str) -> list[str]:
    """A list of strings; one string alone is a list of one (the API sends both)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise SourceRecordError(SOURCE, record, field, f"is not a string or a list of strings: {value!r}"[:200])


def _row(r: dict) -> dict:
    record = f"deployment {r.get('id') or '(no id)'}"
    fields.require(SOURCE, r.get("id"), record, "id")
    shas = _strings(r.get("commitSha"), record, "commitSha")
    if not shas:
        raise SourceRecordError(SOURCE, record, "commitSha", "is empty")
    return {
        "id": r["id"],
        "commit_shas": shas,
        "environment_name": r.get("environmentName"),
        "deployed_at": fields.parse_timestamp(SOURCE, r.get("deployedAt"), record, "deployedAt", required=True),
        "title": r.get("title"),
        "tags": _strings(r.get("tags"), record, "tags"),
        "is_test": bool(r.get("isTest")),
        "created_at": fields.parse_timestamp(SOURCE, r.get("createdAt"), record, "createdAt"),
        "repository": r.get("repository"),
    }
