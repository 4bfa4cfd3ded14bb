"""Services are identified by the service catalog, never by a bare name that two tools or two
groups may share: same-named GitLab projects stay two services, and a catalog entry joins a GitLab
project and a Multitudes repository of different names into one service counted once. Failure
tracking can be overridden per service in both directions."""

from __future__ import annotations

import json

import duckdb
import pytest
from conftest import sandbox_refresh
from warehouse_checks import differences

from dora_pipeline.sandbox.ground_truth import is_counted, performance_measures
from dora_pipeline.sandbox.world import GITLAB, MULTITUDES, PRODUCTION, ServiceSpec

SERVICES = (
    # Two projects called `api` in different groups; search's tools record no failures.
    ServiceSpec(
        "billing-api", "billing", tools=(GITLAB,), environments=("staging", PRODUCTION), gitlab_path="billing/api"
    ),
    ServiceSpec(
        "search-api",
        "search",
        tools=(GITLAB,),
        environments=("staging", PRODUCTION),
        gitlab_path="search/api",
        tracks_failures=False,
    ),
    # One service that GitLab and Multitudes know by different names.
    ServiceSpec(
        "payments",
        "payments",
        tools=(GITLAB, MULTITUDES),
        environments=("staging", PRODUCTION),
        gitlab_path="acme/payments-gateway",
        repository="acme/pay-gw-deployer",
    ),
)
# How the warehouse must name the world's services: the two `api` projects by their full paths.
WAREHOUSE_NAMES = {"billing-api": "billing/api", "search-api": "search/api", "payments": "payments"}
CATALOG = {
    "payments": {"team": "payments", "gitlab": ["acme/payments-gateway"], "multitudes": ["acme/pay-gw-deployer"]},
    "billing/api": {"tracks_failures": False},  # its incidents are not to be trusted, say
    "search/api": {"tracks_failures": True},  # tracked elsewhere, and there were none
}
TRACKING = {"billing-api": False, "search-api": True}


@pytest.fixture(scope="module")
def catalog_refresh(tmp_path_factory):
    """One refresh of a GitLab + Multitudes organisation with a catalog, shared by the tests."""
    env = {
        "DORA__SERVICES": json.dumps(CATALOG),
        "DORA__SERVICE_TEAMS": json.dumps({"billing/api": "billing", "search/api": "search"}),
    }
    with sandbox_refresh(tmp_path_factory.mktemp("catalog"), SERVICES, env) as (settings, sandbox, _):
        yield settings.duckdb_path, sandbox.world.view(sandbox.as_of)


def test_catalog_names_services_and_same_named_projects_stay_apart(catalog_refresh):
    warehouse, world = catalog_refresh
    with duckdb.connect(str(warehouse), read_only=True) as con:
        naming = {
            (source, path): (service, how)
            for source, path, service, how in con.execute(
                "select source, service_path, service, naming from marts.services"
            ).fetchall()
        }
        by_source = dict(
            con.execute(
                "select source, count(*) filter (where is_counted) from marts.deployments "
                "where service = 'payments' group by source"
            ).fetchall()
        )
    assert naming == {
        ("gitlab", "billing/api"): ("billing/api", "qualified"),
        ("gitlab", "search/api"): ("search/api", "qualified"),
        ("gitlab", "acme/payments-gateway"): ("payments", "catalog"),
        ("multitudes", "acme/pay-gw-deployer"): ("payments", "catalog"),
    }
    # The deployment both tools report counts once, under the catalog's name.
    truth = sum(1 for d in world.deployments if d.service == "payments" and is_counted(d))
    assert truth > 0 and by_source == {"gitlab": truth, "multitudes": 0}
    for grain in ("day", "week", "month"):
        for level in ("service_environment", "team", "overall"):
            found = differences(
                warehouse,
                world,
                grain=grain,
                level=level,
                names=WAREHOUSE_NAMES,
                configured_tracking=TRACKING,
            )
            assert found == [], (grain, level, found[:5])


def test_configured_failure_tracking_overrides_what_the_data_shows(catalog_refresh):
    warehouse, world = catalog_refresh
    assert any(f.service == "billing-api" for f in world.failures)  # the data says it tracks failures
    assert not any(f.service == "search-api" for f in world.failures)  # the data cannot say
    with duckdb.connect(str(warehouse), read_only=True) as con:
        levels = {
            (scope, metric): (value, level)
            for scope, metric, value, level in con.execute(
                "select scope, metric, value, level from marts.performance_levels where scope_level = 'service'"
            ).fetchall()
        }
    expected = performance_measures(world, configured_tracking=TRACKING)
    assert levels[("billing/api", "change_failure_rate")] == (None, "not_tracked")
    assert levels[("billing/api", "recovery_time")] == (None, "not_tracked")
    value, level = levels[("search/api", "change_failure_rate")]
    assert value == expected[("service", "search-api", "change_failure_rate")] == 0.0
    assert level == "elite"  # a measured zero, because the user says failures are tracked
