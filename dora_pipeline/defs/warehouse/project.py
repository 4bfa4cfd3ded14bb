"""The dbt project and its manifest, prepared whenever it is missing or stale.

`@dbt_assets` reads `manifest.json` at import time and dagster-dbt only prepares it under
`dagster dev`; preparing it here means the demo, the tests, CI and `dagster dev` all just work.
The manifest depends on which sources are enabled (their models are enabled through the var
`dora_sources`), so a change of that set re-parses too. It is parsed with every var the build
passes: dbt parses the whole project again (about 2 s) when a build's vars differ from those its
saved parse was made with, and parses only what changed otherwise.
"""

from __future__ import annotations

import json
import sys
from functools import cached_property
from importlib.metadata import version as installed_version
from pathlib import Path

import dlt
from dagster_dbt import DbtCliResource, DbtProject
from packaging.version import Version

from dora_pipeline.catalog import load_catalog
from dora_pipeline.settings import DBT_PROJECT_DIR


def dbt_executable() -> str:
    """The dbt installed beside this Python, so an unactivated virtualenv still finds it."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


class DbtCli(DbtCliResource):
    """dagster-dbt's dbt CLI resource without two costs it pays before every dbt command, for
    things this project does not use (4.3 s of a 30 s incremental refresh at demo size):

    - it runs `dbt --version` in a subprocess (2.8 s) to tell dbt Core from the Fusion engine; the
      dbt beside this Python is the dbt-core package installed with it, whose version we know;
    - it opens a dbt adapter in process (1.5 s), used only to fetch column metadata from the
      warehouse (`fetch_column_metadata`), which the warehouse assets do not ask for.
    """

    @cached_property
    def _cli_version(self) -> Version:
        return Version(installed_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: object) -> None:
        return None


def dbt_cli(project: DbtProject) -> DbtCli:
    return DbtCli(project_dir=project, dbt_executable=dbt_executable())


def dbt_vars(sources: list[str]) -> dict:
    """The enabled sources and the metric settings from dlt's configuration (`[dora]` in
    .dlt/config.toml or `DORA__*`): the vars of every parse and build."""
    return {
        "dora_sources": sources,
        **load_catalog().dbt_vars(),
        "failure_window_days": dlt.config.get("dora.failure_window_days", int) or 7,
        "failure_severity_threshold": dlt.config.get("dora.failure_severity_threshold", int),
    }


def vars_argument(values: dict) -> str:
    """`--vars` for dbt, which reads it as YAML: JSON, but with the characters themselves, since
    YAML refuses JSON's escaped surrogate pairs (an emoji in a service name)."""
    return json.dumps(values, ensure_ascii=False, sort_keys=True)


def _newest_source_mtime(project_dir: Path) -> float:
    files = [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]
    for folder in ("models", "macros", "seeds", "tests"):
        files.extend(p for p in (project_dir / folder).rglob("*") if p.is_file())
    return max(p.stat().st_mtime for p in files if p.exists())


def prepared_project(sources: list[str]) -> DbtProject:
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    manifest = Path(project.manifest_path)
    marker = manifest.parent / "dora_vars.json"
    wanted = vars_argument(dbt_vars(sources))
    stale = (
        not manifest.exists()
        or manifest.stat().st_mtime < _newest_source_mtime(DBT_PROJECT_DIR)
        or not marker.exists()
        or marker.read_text() != wanted
    )
    if stale:
        args = ["parse", "--quiet", "--vars", wanted]
        dbt_cli(project).cli(args, target_path=project.target_path).wait()
        marker.write_text(wanted)
    return project
