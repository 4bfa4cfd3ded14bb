"""The HTML report in a real headless browser: it loads without script errors and draws its charts."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from dora_pipeline.refresh import run_refresh
from dora_pipeline.report import METRICS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def render(page, profile) -> str:
    """The DOM after the page's scripts ran, as headless Chromium sees it."""
    done = subprocess.run(
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
            f"--user-data-dir={profile}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is installed by .ci/run (apt package chromium)")
def test_report_loads_in_chromium_and_draws_every_chart(settings, sandbox, point_at_sandbox, tmp_path):
    run_refresh(settings)  # the dora_report asset writes the report after publishing
    dom = render(settings.report_path, tmp_path / "chromium")

    assert "data-errors" not in dom
    rendered = re.search(r'data-charts-rendered="(\d+)"', dom)
    assert rendered and int(rendered.group(1)) >= 2 * len(METRICS)
    for team in {s.team for s in sandbox.world.services}:
        assert team in dom
    assert len(re.findall(r'<td class="(?:elite|high|medium|low)">', dom)) >= 4 * 3  # levels of 3+ scopes
    assert "Data quality" in dom and "duplicate" in dom
