"""Sources configured for a sandbox exactly as the demo configures them, with overrides: the tests
that read one source's resources outside a refresh build them here."""

from __future__ import annotations

import json

from dlt.sources import DltSource

from dora_pipeline.sources.gitlab import gitlab_source


def gitlab(sandbox, **overrides) -> DltSource:
    env = sandbox.source_environment()
    args = {
        "projects": json.loads(env["SOURCES__GITLAB__PROJECTS"]),
        "private_token": env["SOURCES__GITLAB__PRIVATE_TOKEN"],
        "base_url": env["SOURCES__GITLAB__BASE_URL"],
        "start_date": env["SOURCES__GITLAB__START_DATE"],
    }
    return gitlab_source(**{**args, **overrides})
