"""Records a source sent that cannot be loaded as they are: set aside, never loaded as garbage,
never silently dropped, and never a reason to fail the whole source.

A converter raises `SourceRecordError` for a record it cannot load (a missing id, a number that
is `"n/a"`, a list that is a string of something else, an unknown status); `convert_each` catches
that per record, and also rejects every record of one response that shares its key with another
(two different records under one id must not silently merge into one). The refresh loads the
rest; the ingestion step writes the rejections to `dora_ops.rejected_records` (see
`source_runs.record_rejections`), the data-quality mart counts them as `rejected_record`, and the
command line says how many there were. Payloads are kept with every known credential removed.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from dora_pipeline.sources.http import SourceRecordError, redact_known_secrets

PAYLOAD_LIMIT = 64_000


@dataclass(frozen=True)
class Rejection:
    source: str
    resource: str
    record_key: str | None
    field: str
    problem: str
    payload: str
    service_key: str | None


_collected: dict[str, list[Rejection]] = defaultdict(list)
# Records rejected by an earlier refresh and not loaded since, per source: (resource, record key,
# service key). When one of them arrives again and loads, its rejection no longer holds.
RecordRef = tuple[str, str, str | None]
_open: dict[str, set[RecordRef]] = {}
_loaded_again: dict[str, set[RecordRef]] = defaultdict(set)


def watch_for(source: str, still_rejected: Iterable[RecordRef]) -> None:
    """Before extracting `source`: the records an earlier refresh rejected."""
    _open[source] = set(still_rejected)
    _loaded_again.pop(source, None)


def still_rejected(source: str) -> set[RecordRef]:
    """The records of `source` an earlier refresh rejected and no load has brought since: a source
    whose look-back is narrowed reads their part again whole, so a record fixed at the API loads."""
    return set(_open.get(source, ()))


def loaded_again(source: str) -> set[RecordRef]:
    """The earlier rejected records of `source` that loaded this time (and stop watching)."""
    _open.pop(source, None)
    return _loaded_again.pop(source, set())


def reject(
    source: str, resource: str, record_key: Any, field: str, problem: str, raw: Any, service_key: Any = None
) -> None:
    payload = redact_known_secrets(json.dumps(raw, default=str, sort_keys=True))
    if len(payload) > PAYLOAD_LIMIT:  # still JSON, so it can be queried
        payload = json.dumps({"truncated_payload": payload[:PAYLOAD_LIMIT]})
    _collected[source].append(
        Rejection(
            source,
            resource,
            None if record_key is None else str(record_key),
            field,
            redact_known_secrets(problem),
            payload,
            None if service_key is None else str(service_key),
        )
    )


def drain(source: str) -> list[Rejection]:
    """The rejections collected for `source` since the last drain."""
    return _collected.pop(source, [])


def convert_each(
    source: str,
    resource: str,
    records: Iterable[Any],
    convert: Callable[[Any], dict],
    key_field: str,
    service_key: Any = None,
) -> list[dict]:
    """Convert every record of one response; reject, instead of failing, those that cannot be
    loaded and those whose key another record of the same response shares."""
    records = list(records)
    keys = [r.get(key_field) if isinstance(r, dict) else None for r in records]
    keys = [k if isinstance(k, (str, int, float)) and not isinstance(k, bool) else None for k in keys]
    shared = {k for k, n in Counter(k for k in keys if k is not None).items() if n > 1}
    rows = []
    for raw, key in zip(records, keys, strict=True):
        if key in shared:
            problem = "is shared by another record of the same response"
            reject(source, resource, key, key_field, problem, raw, service_key)
            continue
        if not isinstance(raw, dict):
            reject(source, resource, None, "(record)", f"is not an object: {type(raw).__name__}", raw, service_key)
            continue
        try:
            rows.append(convert(raw))
        except SourceRecordError as error:
            reject(source, resource, key, error.field, error.problem, raw, service_key)
            continue
        ref = (resource, str(key), None if service_key is None else str(service_key))
        if key is not None and ref in _open.get(source, ()):
            _loaded_again[source].add(ref)
    return rows
