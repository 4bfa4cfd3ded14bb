"""The sandbox in a process of its own, for the benchmarks.

At the larger sizes the emulators cost as much CPU as the pipeline and hold a large world in
memory. Served from the pipeline's process they would take its GIL and count in its peak RSS; in a
process of their own they do neither, so the figures printed are the pipeline's. The harness asks
what it needs (requests received, a day later, Gearset's polling profile) through a
multiprocessing manager.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from multiprocessing.managers import BaseManager

from dora_pipeline.sandbox.world import OrgShape


class SandboxHost:
    """Lives in the manager's process; every method is a call the harness makes over the pipe."""

    def __init__(self, shape: OrgShape, poll_seconds: float):
        from dora_pipeline.sandbox.server import Sandbox

        self._box = Sandbox.start(shape=shape)
        self._box.warm()  # the emulators' one-off indexing is the sandbox's cost, not the pipeline's
        if poll_seconds:
            # the real minimum between two polls of one report, and every report running for a poll
            self._box.gearset.faults.min_poll_interval_seconds = poll_seconds
            self._box.gearset.faults.running_polls = 1

    def environment(self) -> dict[str, str]:
        return self._box.source_environment()

    def service_teams(self) -> dict[str, str]:
        return self._box.service_teams()

    def marks(self) -> dict[str, int]:
        return {name: len(state.requests) for name, state in self._box.states.items()}

    def requests_since(self, marks: dict[str, int]) -> dict[str, list[dict]]:
        return {name: state.requests[marks.get(name, 0) :] for name, state in self._box.states.items()}

    def token(self, emulator: str) -> str:
        return self._box.states[emulator].token

    def base_url(self, emulator: str) -> str:
        return self._box.base_url(emulator)

    def next_day(self) -> None:
        self._box.set_as_of(self._box.as_of + timedelta(days=1))
        self._box.warm()

    def ci_operation_ids(self) -> set[str]:
        """The status and result ids of Gearset's CI-job-runs reports: their polls and results
        belong to the gearset_automation source, though their paths do not say so."""
        gearset = self._box.gearset
        return {i for i, op in gearset.operations.items() if op.kind == "ci_runs"} | {
            i for i, op in gearset.results.items() if op.kind == "ci_runs"
        }

    def size(self) -> dict[str, int]:
        """What the tools know at the as-of moment: services, deployments, changes, failures."""
        seen = self._box.world.view(self._box.as_of)
        return {
            "services": len(seen.services),
            "deployments": sum(not d.is_test for d in seen.deployments),
            "changes": len(seen.changes),
            "failures": len(seen.failures),
        }

    def pid(self) -> int:
        return os.getpid()

    def peak_rss_mb(self) -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Manager(BaseManager):
    pass


_Manager.register("SandboxHost", SandboxHost)


@contextmanager
def remote_sandbox(shape: OrgShape, poll_seconds: float) -> Iterator[SandboxHost]:
    """A sandbox of the organisation `shape` served from a fresh process (spawned, so it shares
    nothing with the caller's memory), stopped on exit."""
    manager = _Manager(ctx=multiprocessing.get_context("spawn"))
    manager.start()
    try:
        yield manager.SandboxHost(shape, poll_seconds)
    finally:
        manager.shutdown()
