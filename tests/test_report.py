"""The HTML report in a real headless browser: no script error, every chart drawn, the tiles equal
the ground truth for the scope the selectors choose, and screenshots a person can look at
(written to test-output/screenshots/)."""

from __future__ import annotations

import html
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import tenacity

from dora_pipeline.report import METRICS
from dora_pipeline.sandbox.ground_truth import failure_tracking, performance_measures

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-output" / "screenshots"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is installed by .ci/run (apt package chromium)")


# Headless Chromium now and then hangs and never exits (once in a full CI run, under load, on the
# first screenshot; the same page alone takes seconds): its process group is killed after a minute
# and the run is tried once more, in a profile of its own.
@tenacity.retry(
    retry=tenacity.retry_if_exception_type(subprocess.TimeoutExpired), stop=tenacity.stop_after_attempt(2), reraise=True
)
def chromium(url: str, profile: Path, *arguments: str) -> str:
    process = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile / str(time.monotonic_ns())}",
            "--virtual-time-budget=20000",
            *arguments,
            url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    assert process.returncode == 0, stderr[-2000:]
    return stdout


def shown(report: Path, profile: Path, selection: str, screenshot: str) -> str:
    """The DOM after the page's scripts ran for the selection in the URL (as the selectors set it),
    and a full-page screenshot of it."""
    url = report.as_uri() + (f"#{selection}" if selection else "")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    chromium(url, profile, "--window-size=1400,4200", f"--screenshot={SCREENSHOTS / screenshot}")
    return chromium(url, profile, "--dump-dom")


def tiles(dom: str) -> dict[str, str]:
    return dict(re.findall(r'<article class="tile" data-metric="(\w+)" data-value="([^"]*)"', dom))


def test_report_draws_every_chart_and_its_tiles_follow_the_selectors(reference_refresh, tmp_path):
    report, world = reference_refresh.settings.report_path, reference_refresh.world
    truth = performance_measures(world)
    tracked = failure_tracking(world)
    teams = sorted({s.team for s in world.services})
    team = next(t for t in teams if any(s.team == t and s.name in tracked for s in world.services))
    untracked = sorted({d.service for d in world.deployments} - tracked)[0]
    assert report.stat().st_size < 3_000_000  # plotly.js travels gzip-compressed

    doms = {}
    for selection, scope, screenshot in (
        ("", ("overall", "all"), "report-all-teams.png"),
        (f"team={quote(team)}", ("team", team), "report-team.png"),
        (f"service={quote(untracked)}", ("service", untracked), "report-service-without-failure-tracking.png"),
    ):
        dom = doms[scope] = shown(report, tmp_path / "chromium", selection, screenshot)
        assert "data-errors" not in dom, re.search(r'data-errors="([^"]*)"', dom)
        assert f'data-scope="{scope[0]}:{html.escape(scope[1])}"' in dom
        assert f'data-charts-rendered="{len(METRICS) + 1}"' in dom  # a chart per metric and the stages
        shown_tiles = tiles(dom)
        assert len(shown_tiles) == len(METRICS)
        for metric, value in shown_tiles.items():
            if metric == "rework_rate":
                continue  # not part of the performance-level truth; test_end_to_end checks it
            expected = truth[(*scope, metric)]
            assert (float(value) if value else None) == (None if expected is None else pytest.approx(expected)), (
                scope,
                metric,
            )
        drawn = dict(re.findall(r'id="chart-(\w+)" data-metric="\w+"[^>]*data-traces="(\d+)"', dom))
        assert len(drawn) == len(METRICS), drawn
        if scope[1] in tracked or scope[0] != "service":
            assert all(int(n) > 0 for n in drawn.values()), drawn
        else:
            assert dom.count(">not tracked<") == 2  # the two failure tiles, never 0 %
            assert drawn["change_failure_rate"] == drawn["recovery_time"] == "0"
        # The drill-downs list only the rows of the scope.
        slowest = re.search(r'<table id="slowest-changes".*?</table>', dom, re.S).group(0)
        listed = set(re.findall(r'<tr><td class="">([^<]*)</td>', slowest))
        in_scope = {s.name for s in world.services if scope[0] == "overall" or scope[1] in (s.name, s.team)}
        assert listed and listed <= {html.escape(name) for name in in_scope}, (scope, listed)

    overall = doms[("overall", "all")]
    open_failures = [f for f in world.failures if f.resolved_at is None and f.service in tracked]
    assert open_failures and overall.count('class="open"') == len(open_failures)
    for team_name in teams:
        assert f'<option value="{html.escape(team_name)}">' in overall
    assert "Data quality" in overall and "duplicate" in overall
    assert re.search(r'class="badge (elite|high|medium|low)"', overall)
