"""The dbt project and its manifest, prepared whenever it is missing or older than the sources.

`@dbt_assets` reads `manifest.json` at import time and dagster-dbt only prepares it under
`dagster dev`; preparing it here means the demo, the tests, CI and `dagster dev` all just work.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dagster_dbt import DbtProject
from dagster_dbt.dbt_project import DagsterDbtProjectPreparer

from dora_pipeline.settings import DBT_PROJECT_DIR


def dbt_executable() -> str:
    """The dbt installed beside this Python, so an unactivated virtualenv still finds it."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def _newest_source_mtime(project_dir: Path) -> float:
    files = [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]
    for folder in ("models", "macros", "seeds", "tests"):
        files.extend(p for p in (project_dir / folder).rglob("*") if p.is_file())
    return max(p.stat().st_mtime for p in files if p.exists())


def prepared_project() -> DbtProject:
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    manifest = Path(project.manifest_path)
    if not manifest.exists() or manifest.stat().st_mtime < _newest_source_mtime(DBT_PROJECT_DIR):
        DagsterDbtProjectPreparer().prepare(project)
    return project
