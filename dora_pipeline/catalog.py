"""The service catalog: which tool identifiers are one service, its team, whether it tracks failures.

Each tool names a service its own way (a Gearset pipeline, a GitLab project, a Multitudes or
GitClear repository, a Gearset CI job). Without a catalog entry a service takes the tool's default
name (and two identifiers of one tool that would share it are kept apart by their full path); an
entry names the service, lists each tool's identifiers that belong to it (which is also how one
deployment seen by two tools counts once) and may give its team and say whether it tracks
failures. Configured through dlt like everything else:

    [dora.services.payments]              # .dlt/config.toml, or DORA__SERVICES as JSON
    team = "payments"
    gitlab = ["acme/payments/api"]        # project paths or ids
    multitudes = ["acme/payments-gw"]     # repository paths
    tracks_failures = true                # overrides what the data shows

The older `[dora] service_teams = {service = team}` still works and folds into the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dlt

from dora_pipeline.sources import fields
from dora_pipeline.sources.http import SourceError

TOOLS = ("gearset", "gitlab", "multitudes", "gitclear", "gearset_automation")
ENTRY_KEYS = ("team", "tracks_failures", *TOOLS)
HINT = "see the README section 'Services and teams'"


@dataclass(frozen=True)
class ServiceCatalog:
    teams: dict[str, str] = field(default_factory=dict)
    failure_tracking: dict[str, bool] = field(default_factory=dict)
    # (tool, identifier, service): an identifier is a key or a full path of the tool
    identifiers: list[tuple[str, str, str]] = field(default_factory=list)

    def dbt_vars(self) -> dict:
        return {
            "service_teams": self.teams,
            "service_failure_tracking": self.failure_tracking,
            "service_identifiers": [list(triple) for triple in self.identifiers],
        }


def load_catalog() -> ServiceCatalog:
    """The catalog from `dora.services` and `dora.service_teams`, validated."""
    entries = dlt.config.get("dora.services", dict) or {}
    if not isinstance(entries, dict):
        raise SourceError("dora", "dora.services must be a table of services", hint=HINT)
    teams = {str(k): str(v) for k, v in (dlt.config.get("dora.service_teams", dict) or {}).items()}
    catalog = ServiceCatalog(teams=teams)
    owners: dict[tuple[str, str], str] = {}
    for service, entry in entries.items():
        where = f"dora.services.{service}"
        if not isinstance(entry, dict):
            raise SourceError("dora", f"{where} must be a table (team, tracks_failures, tool identifiers)", hint=HINT)
        unknown = sorted(set(entry) - set(ENTRY_KEYS))
        if unknown:
            raise SourceError(
                "dora", f"{where}: unknown key {unknown[0]!r}", hint=f"use one of {', '.join(ENTRY_KEYS)}"
            )
        if entry.get("team") is not None:
            catalog.teams[service] = str(entry["team"])
        if entry.get("tracks_failures") is not None:
            if not isinstance(entry["tracks_failures"], bool):
                raise SourceError("dora", f"{where}.tracks_failures must be true or false", hint=HINT)
            catalog.failure_tracking[service] = entry["tracks_failures"]
        for tool in TOOLS:
            for identifier in fields.as_list(entry.get(tool)):
                claim = (tool, str(identifier))
                if claim in owners and owners[claim] != service:
                    raise SourceError(
                        "dora",
                        f"{tool} identifier {identifier!r} is listed by dora.services.{owners[claim]} and {where}",
                        hint="list each identifier under one service",
                    )
                owners[claim] = service
                catalog.identifiers.append((tool, str(identifier), service))
    return catalog
