"""Typed reading of API fields, with errors that name the source, the record and the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from dora_pipeline.sources.http import SourceRecordError


def parse_timestamp(source: str, value: Any, record: str, field: str, required: bool = False) -> datetime | None:
    """ISO 8601 (`Z`, an offset, or none = UTC) or GitClear's `YYYY-MM-DD HH:MM:SS UTC`."""
    if value is None or value == "":
        if required:
            raise SourceRecordError(source, record, field, "is missing")
        return None
    text = str(value).strip()
    if text.endswith(" UTC"):
        text = text[:-4].replace(" ", "T") + "+00:00"
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SourceRecordError(source, record, field, f"is not an ISO 8601 timestamp: {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_int(source: str, value: Any, record: str, field: str) -> int | None:
    """Whole numbers; some APIs send them as strings."""
    if value is None or value == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise SourceRecordError(source, record, field, f"is not a whole number: {value!r}") from None


def parse_float(source: str, value: Any, record: str, field: str) -> float | None:
    """Numbers; some APIs send them as strings. Anything else (`"n/a"`, `"big"`) is an error."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise SourceRecordError(source, record, field, f"is not a number: {value!r}")
    try:
        return float(str(value).strip())
    except ValueError:
        raise SourceRecordError(source, record, field, f"is not a number: {value!r}") from None


def require(source: str, value: Any, record: str, field: str) -> Any:
    """A field the record cannot be loaded without (an id, a key)."""
    if value is None or value == "":
        raise SourceRecordError(source, record, field, "is missing")
    if isinstance(value, (dict, list)):
        raise SourceRecordError(source, record, field, f"is not a single value: {value!r}"[:200])
    return value


def as_list(value: Any) -> list:
    """Lists configured as JSON text, comma-separated text or a real list."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return list(value)
