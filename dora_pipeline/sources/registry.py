"""The sources dora-pipeline knows, and which of them a run uses.

A source is enabled when its token is configured (`sources.<name>.<token key>` in
.dlt/secrets.toml or `SOURCES__<NAME>__<TOKEN KEY>`), or when `dora.sources` lists it. With
nothing configured every source is enabled, so the Dagster graph shows them all and a run says
which key is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dlt
from dlt.sources import DltSource

from dora_pipeline.sources.gearset import gearset_source
from dora_pipeline.sources.gearset_automation import gearset_automation_source
from dora_pipeline.sources.gitclear import gitclear_source
from dora_pipeline.sources.gitlab import gitlab_source
from dora_pipeline.sources.http import SourceError
from dora_pipeline.sources.multitudes import multitudes_source


@dataclass(frozen=True)
class SourceSpec:
    name: str
    build: Callable[..., DltSource]
    token_key: str
    # Arguments that describe the resources without resolving any configuration.
    placeholders: dict

    def describe(self) -> DltSource:
        return self.build(**self.placeholders)


SOURCES = {
    spec.name: spec
    for spec in (
        SourceSpec("gearset", gearset_source, "api_token", {"pipeline_ids": [], "api_token": "", "base_url": ""}),
        SourceSpec("gitlab", gitlab_source, "private_token", {"projects": [], "private_token": ""}),
        SourceSpec("multitudes", multitudes_source, "api_token", {"api_token": ""}),
        SourceSpec("gitclear", gitclear_source, "api_token", {"resource_paths": [], "api_token": ""}),
        SourceSpec("gearset_automation", gearset_automation_source, "api_token", {"ci_job_ids": [], "api_token": ""}),
    )
}


def setting_name(source: str, key: str) -> str:
    """The environment variable that sets `sources.<source>.<key>`."""
    return f"SOURCES__{source}__{key}".upper()


def configured_sources() -> list[str]:
    """The sources a run uses: those listed in `dora.sources`, else those with a token."""
    return [name for name in enabled_sources() if _is_configured(name)]


def _is_configured(name: str) -> bool:
    spec = SOURCES[name]
    return bool(dlt.config.get("dora.sources", list)) or bool(dlt.secrets.get(f"sources.{name}.{spec.token_key}"))


def enabled_sources() -> list[str]:
    chosen = dlt.config.get("dora.sources", list)
    if chosen:
        unknown = sorted(set(chosen) - set(SOURCES))
        if unknown:
            raise SourceError(
                "dora",
                f"unknown sources in dora.sources: {', '.join(unknown)}",
                hint=f"choose from {', '.join(SOURCES)}",
            )
        return [name for name in SOURCES if name in chosen]
    configured = [name for name, spec in SOURCES.items() if dlt.secrets.get(f"sources.{name}.{spec.token_key}")]
    return configured or list(SOURCES)
