"""Command-line errors: one clear line and a hint, no traceback, no token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).parent / "dora-pipeline")


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DORA__"))}
    base |= {"DORA_DUCKDB_PATH": str(tmp_path / "w.duckdb"), "DAGSTER_HOME": str(tmp_path / "dagster")}
    return subprocess.run([CLI, *args], env=base | env, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_run_without_any_source_says_so_in_one_line(tmp_path):
    done = run_cli(tmp_path, "run")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: no source is configured",
        "hint: set a source's token, e.g. SOURCES__GITLAB__PRIVATE_TOKEN; see the README section "
        "'Configuration for real APIs'",
    ]
    assert done.stdout == ""


def test_run_with_a_source_missing_a_key_names_the_key(tmp_path):
    done = run_cli(tmp_path, "run", SOURCES__GITLAB__PRIVATE_TOKEN="t")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("error:") and "projects" in lines[0]
    assert lines[-1].startswith("hint:")


def test_run_with_a_bad_catalog_names_the_key(tmp_path):
    done = run_cli(
        tmp_path,
        "run",
        SOURCES__GITLAB__PRIVATE_TOKEN="t",
        SOURCES__GITLAB__PROJECTS='["a/b"]',
        DORA__SERVICES='{"payments": {"gitlab": ["a/b"], "colour": "blue"}}',
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[0] == "error: dora: dora.services.payments: unknown key 'colour'"


def test_run_with_a_wrong_token_says_401_and_hides_the_token(tmp_path, sandbox):
    secret = "definitely-wrong-token-42"
    done = run_cli(
        tmp_path,
        "run",
        SOURCES__GEARSET__BASE_URL=sandbox.base_url("gearset"),
        SOURCES__GEARSET__API_TOKEN=secret,
        SOURCES__GEARSET__PIPELINE_IDS='["x"]',
    )
    assert done.returncode == 1
    assert "HTTP 401" in done.stderr and "Traceback" not in done.stderr
    assert secret not in done.stderr + done.stdout


def test_version_and_validated_options_name_what_is_wrong(tmp_path):
    version = run_cli(tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.startswith("dora-pipeline, version ")
    for command in ("demo", "sandbox"):
        done = run_cli(tmp_path, command, "--as-of", "yesterday")
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert "Invalid value for '--as-of': 'yesterday' is not an ISO 8601 moment" in done.stderr


def test_summary_and_report_without_a_warehouse_say_how_to_make_one(tmp_path):
    for command in ("summary", "report"):
        done = run_cli(tmp_path, command, "--warehouse", str(tmp_path / "missing.duckdb"))
        assert done.returncode == 1
        assert done.stderr.strip().splitlines() == [
            f"error: no warehouse at {tmp_path / 'missing.duckdb'}",
            "hint: run `dora-pipeline demo` or `dora-pipeline run` first, or pass --warehouse",
        ]
