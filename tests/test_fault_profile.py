"""The sandbox's seeded fault profile, and refreshes that run through it: under a quarter and more
of all answers failing transiently (rate limits with and without `Retry-After`, 5xx, slow and
hung answers, dropped connections, truncated bodies) across all five sources, consecutive
refreshes of one warehouse end with every mart identical to a fault-free refresh.

`bench/fault_soak.py` runs the same comparison for ten consecutive refreshes."""

from __future__ import annotations

import pytest
from warehouse_checks import marts_fingerprint

from dora_pipeline.refresh import run_refresh
from dora_pipeline.sandbox.fault_profile import TRANSIENT, FaultProfile, FaultProfileError
from dora_pipeline.sources import rejections
from dora_pipeline.sources.http import user_message
from dora_pipeline.sources.registry import SOURCES, setting_name


def test_a_profile_is_read_from_its_text_form():
    profile = FaultProfile.parse("rate=0.3, seed=7, kinds=hang:0.5+truncate, hang_seconds=3, retry_after_seconds=0")
    assert profile.rate == 0.3 and profile.seed == 7 and profile.hang_seconds == 3.0
    assert profile.kinds == (("hang", 0.5), ("truncate", 1.0)) and profile.retry_after_seconds == 0
    assert FaultProfile.parse("").rate == 0.0


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("rate=2", "rate must be between 0 and 1"),
        ("rate=lots", "rate='lots' is not a number"),
        ("kinds=meteor", "unknown fault kind 'meteor'"),
        ("kinds=hang:0", "positive weight"),
        ("colour=red", "unknown setting 'colour'"),
    ],
)
def test_a_wrong_profile_is_refused_with_what_is_wrong(text, says):
    with pytest.raises(FaultProfileError, match=says):
        FaultProfile.parse(text)


def test_the_same_seed_draws_the_same_faults_and_the_rate_holds():
    profile = FaultProfile.parse("rate=0.3,seed=11")
    first, again = profile.generator("gitlab"), profile.generator("gitlab")
    draws = [profile.draw(first) for _ in range(4000)]
    assert draws == [profile.draw(again) for _ in range(4000)]
    assert draws != [profile.draw(profile.generator("gearset")) for _ in range(4000)]
    share = sum(d is not None for d in draws) / len(draws)
    assert 0.27 < share < 0.33
    assert {d for d in draws if d} == set(TRANSIENT)


# What an operator sets for an API this unreliable: a short timeout (a hung answer costs one
# timeout), quick first back-off, and enough attempts that 0.3 ** attempts is negligible over the
# few thousand requests of a refresh.
PATIENT_CLIENT = {"request_timeout_seconds": "1", "retry_backoff_seconds": "0.01", "max_attempts": "12"}
# Every transient kind; hangs rarer than the rest only because each costs a whole timeout.
PROFILE = (
    "rate=0.3,seed={seed},slow_seconds=0.1,hang_seconds=3,retry_after_seconds=0,"
    "kinds=rate_limit+rate_limit_without_retry_after+server_error+slow+hang:0.3+reset+truncate"
)


def test_consecutive_refreshes_under_transient_faults_end_identical_to_a_fault_free_one(
    settings, sandbox, point_at_sandbox, monkeypatch, reference_refresh, figures
):
    expected = marts_fingerprint(reference_refresh.settings.duckdb_path)  # the same organisation, no faults

    for source in SOURCES:
        for key, value in PATIENT_CLIENT.items():
            monkeypatch.setenv(setting_name(source, key), value)
    kinds_seen: set[str] = set()
    for refresh, seed in enumerate((101, 202), start=1):
        sandbox.set_fault_profile(FaultProfile.parse(PROFILE.format(seed=seed)))

        outcome = run_refresh(settings)

        injected = sandbox.faults_injected()
        answers = sandbox.requests_received()
        figures.append(
            f"fault profile, refresh {refresh} of 2: {sum(injected.values())} faults in {answers} requests "
            f"({sum(injected.values()) / answers:.0%}) across all five sources, marts identical: {injected}"
        )
        assert outcome.failed_sources == [] and outcome.rejected_records == 0
        assert sum(injected.values()) / answers >= 0.25
        kinds_seen |= set(injected)
        differing = [t for t, found in marts_fingerprint(settings.duckdb_path).items() if expected.get(t) != found]
        assert differing == [] and len(expected) >= 15
    assert kinds_seen == set(TRANSIENT)


@pytest.mark.parametrize(
    ("source", "resource"),
    [
        ("gearset", "deployments"),
        ("gearset_automation", "ci_job_runs"),
        ("gitlab", "deployments"),
        ("multitudes", "deployments"),
        ("gitclear", "commits"),
    ],
)
def test_a_duplicated_record_is_set_aside_never_loaded_twice(source, resource, sandbox, extract):
    clean = extract(source, resource)
    rejections.drain(source)
    # every answer: Gearset answers a year of a pipeline in one report, so there are few of them
    sandbox.set_fault_profile(FaultProfile.parse("rate=1,seed=5,kinds=duplicate_record"))

    rows = extract(source, resource)

    duplicated = sandbox.faults_injected().get("duplicate_record", 0)
    found = rejections.drain(source)
    assert duplicated > 0 and len(found) == 2 * duplicated
    assert {(r.resource, r.problem) for r in found} == {(resource, "is shared by another record of the same response")}
    assert len(rows) == len(clean) - duplicated


def test_a_repeated_page_ends_in_a_clear_error_not_in_doubled_rows(sandbox, extract):
    sandbox.set_fault_profile(FaultProfile.parse("rate=1,seed=5,kinds=repeat_page"))

    with pytest.raises(Exception) as raised:
        extract("gitlab", "deployments")

    assert sandbox.faults_injected().get("repeat_page", 0) > 0
    assert "pagination does not advance" in user_message(raised.value)
