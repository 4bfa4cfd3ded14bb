"""One source that cannot be extracted (unreachable, 401) does not stop the refresh: the other
sources load, the warehouse is built from the failed source's last good data and published, and
the command exits non-zero with one line naming the source and how stale its data is."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import duckdb
from warehouse_checks import table_fingerprint

from dora_pipeline.refresh import run_refresh
from dora_pipeline.sandbox.ground_truth import is_counted
from dora_pipeline.sandbox.world import GITLAB

CLI = Path(sys.executable).parent / "dora-pipeline"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_cli(**overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CLI), "run"], env={**os.environ, **overrides}, capture_output=True, text=True, timeout=600
    )


def _errors(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("error:")]


def _counted_by_service(path: Path, leave_out: set[str]) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        counted = con.execute("select service, count(*) from marts.deployments where is_counted group by service")
        return {service: n for service, n in counted.fetchall() if service not in leave_out}


def _freshness(path: Path) -> dict[str, tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            r[0]: r[1:]
            for r in con.execute(
                "select source, last_status, last_success_at, hours_behind from marts.source_freshness"
            ).fetchall()
        }


def test_a_failing_source_leaves_the_others_loaded_and_published(settings, sandbox, point_at_sandbox):
    gitlab_services = {s.name for s in sandbox.world.services_in(GITLAB)}

    def truth(as_of) -> dict[str, int]:
        return dict(
            Counter(
                d.service
                for d in sandbox.world.view(as_of).deployments
                if is_counted(d) and d.service not in gitlab_services
            )
        )

    # 1. First run with GitLab unreachable: the other four load; GitLab's tables exist, empty.
    done = _run_cli(
        SOURCES__GITLAB__BASE_URL=f"http://127.0.0.1:{_closed_port()}/api/v4",
        SOURCES__GITLAB__RETRY_BACKOFF_SECONDS="0.05",  # every attempt still made, only sooner
    )
    assert done.returncode == 1, done.stderr[-2000:]
    errors = _errors(done)
    assert len(errors) == 1 and "source gitlab failed" in errors[0] and "could not reach" in errors[0], errors
    assert "it has no data yet" in errors[0]
    assert "127.0.0.1:" in errors[0]  # the host it could not reach
    assert "hint: check SOURCES__GITLAB__BASE_URL" in done.stderr
    assert "billing-api" in done.stdout  # the summary of the published warehouse
    assert _counted_by_service(settings.duckdb_path, gitlab_services) == truth(sandbox.as_of)
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        gitlab_rows = con.execute("select count(*) from raw_gitlab.deployments").fetchall()[0][0]
    assert gitlab_rows == 0
    assert _freshness(settings.duckdb_path)["gitlab"][:2] == ("failed", None)

    # 2. GitLab back: everything loads.
    assert run_refresh(settings).failed_sources == []
    gitlab_before = table_fingerprint(settings.duckdb_path, ("raw_gitlab",))
    loaded_at = _freshness(settings.duckdb_path)["gitlab"][1]
    assert gitlab_before["raw_gitlab.deployments"][0] > 0

    # 3. A week later the GitLab token is revoked: GitLab keeps its last good data, the others grow.
    sandbox.set_as_of(sandbox.as_of + timedelta(days=7))
    done = _run_cli(SOURCES__GITLAB__PRIVATE_TOKEN="revoked-token")
    assert done.returncode == 1, done.stderr[-2000:]
    errors = _errors(done)
    assert len(errors) == 1 and "source gitlab failed" in errors[0] and "HTTP 401" in errors[0], errors
    assert f"its data is from {loaded_at:%Y-%m-%d %H:%M} UTC" in errors[0]
    assert "hint: check SOURCES__GITLAB__PRIVATE_TOKEN" in done.stderr
    assert "revoked-token" not in done.stderr + done.stdout
    assert table_fingerprint(settings.duckdb_path, ("raw_gitlab",)) == gitlab_before
    assert (
        _counted_by_service(settings.duckdb_path, gitlab_services)
        == truth(sandbox.as_of)
        != truth(sandbox.as_of - timedelta(7))
    )
    status, last_success, hours_behind = _freshness(settings.duckdb_path)["gitlab"]
    assert (status, last_success) == ("failed", loaded_at) and hours_behind > 0
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        statuses = set(
            con.execute("select distinct source, source_status, source_data_as_of from marts.data_quality").fetchall()
        )
    assert ("gitlab", "failed", loaded_at) in statuses
    report = settings.report_path.read_text()
    assert f"<b>gitlab</b> latest extraction failed; data from {loaded_at:%Y-%m-%d %H:%M}" in report
    assert '<span class="chip failed"' in report and 'role="alert"' in report
    assert {source for source, status, _ in statuses if status == "succeeded"} == {
        "gearset",
        "multitudes",
        "gitclear",
        "gearset_automation",
    }
