"""Names from the APIs and from configuration reach SQL only as quoted literals or bound values:
services, teams, projects and repositories whose names hold quotes, backslashes, Unicode and
hundreds of characters load, name their services exactly, and give the ground truth's numbers."""

from __future__ import annotations

import json

import duckdb
import pytest
from conftest import sandbox_refresh
from warehouse_checks import differences

from dora_pipeline.sandbox.world import GEARSET, GITLAB, MULTITUDES, PRODUCTION, ServiceSpec

QUOTED = 'o\'brien "release" \\ train; drop table marts.deployments; --'
UNICODE = "zahlungs-dienst-ü-東京-🚀"
LONG_REPOSITORY = "acme/" + "very-long-repository-name-" * 12  # over 300 characters
LONG_NAME = "Platform 'Core' — " + "ü" * 250
SERVICES = (
    ServiceSpec(QUOTED, "it's-team", tools=(GEARSET,), environments=("uat", PRODUCTION)),
    ServiceSpec(
        "unicode", "チーム", tools=(GITLAB,), environments=("staging", PRODUCTION), gitlab_path=f"grüppe/{UNICODE}"
    ),
    ServiceSpec("long", "o'neil", tools=(MULTITUDES,), environments=(PRODUCTION,), repository=LONG_REPOSITORY),
)
# How the warehouse names them: Gearset by pipeline name, GitLab by project name, the Multitudes
# repository by the catalog entry that lists it.
WAREHOUSE_NAMES = {QUOTED: QUOTED, "unicode": UNICODE, "long": LONG_NAME}
CATALOG = {LONG_NAME: {"team": "o'neil", "multitudes": [LONG_REPOSITORY]}}
TEAMS = {QUOTED: "it's-team", UNICODE: "チーム"}


@pytest.fixture(scope="module")
def awkward_refresh(tmp_path_factory):
    env = {"DORA__SERVICES": json.dumps(CATALOG), "DORA__SERVICE_TEAMS": json.dumps(TEAMS)}
    with sandbox_refresh(tmp_path_factory.mktemp("awkward"), SERVICES, env) as (settings, sandbox, outcome):
        yield settings.duckdb_path, sandbox.world.view(sandbox.as_of), outcome


def test_awkward_names_load_exactly_and_give_the_ground_truth(awkward_refresh):
    warehouse, world, outcome = awkward_refresh
    assert outcome.failed_sources == [] and outcome.rejected_records == 0
    with duckdb.connect(str(warehouse), read_only=True) as con:
        services = dict(con.execute("select service, team from marts.services").fetchall())
        tables = con.execute("select count(*) from duckdb_tables() where schema_name = 'marts'").fetchone()[0]
    assert services == {QUOTED: "it's-team", UNICODE: "チーム", LONG_NAME: "o'neil"}
    assert tables >= 15  # nothing was dropped on the way
    for level in ("service_environment", "team", "overall"):
        found = differences(warehouse, world, level=level, names=WAREHOUSE_NAMES)
        assert found == [], (level, found[:5])
