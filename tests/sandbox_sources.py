"""Sources configured for a sandbox exactly as the demo configures them, with overrides: the tests
that read one source's resources outside a refresh build them here."""

from __future__ import annotations

import json
from collections.abc import Iterable

import pyarrow as pa
from dlt.sources import DltSource

from dora_pipeline.sources.gitlab import gitlab_source


def rows_in(items: Iterable) -> list[dict]:
    """Every row a resource yields: its batches come as Arrow tables (sources/batches.py) or as
    rows; the empty-table marker is no row."""
    rows = []
    for item in items:
        if isinstance(item, pa.Table):
            rows.extend(item.to_pylist())
        elif item:
            rows.append(item)
    return rows


def gitlab(sandbox, **overrides) -> DltSource:
    env = sandbox.source_environment()
    args = {
        "projects": json.loads(env["SOURCES__GITLAB__PROJECTS"]),
        "private_token": env["SOURCES__GITLAB__PRIVATE_TOKEN"],
        "base_url": env["SOURCES__GITLAB__BASE_URL"],
        "start_date": env["SOURCES__GITLAB__START_DATE"],
    }
    return gitlab_source(**{**args, **overrides})
