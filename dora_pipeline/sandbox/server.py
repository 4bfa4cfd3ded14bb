"""Run the sandbox emulators on loopback, each on its own port, in a background thread."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import uvicorn

from dora_pipeline.sandbox import gearset_api, gitclear_api, gitlab_api, multitudes_api
from dora_pipeline.sandbox.emulator import EmulatorState, with_faults
from dora_pipeline.sandbox.fault_profile import FaultProfile
from dora_pipeline.sandbox.gearset_api import GearsetState
from dora_pipeline.sandbox.world import (
    CI_JOBS,
    DEFAULT_AS_OF,
    DEFAULT_SEED,
    DEFAULT_SERVICES,
    GEARSET,
    GITCLEAR,
    GITLAB,
    MULTITUDES,
    OrgShape,
    ServiceSpec,
    World,
    build_world,
)

# Gearset's Reporting and Automation APIs share one host, as they do at api.gearset.com.
EMULATORS = {
    "gearset": (GearsetState, gearset_api.build_app),
    "gitlab": (gitlab_api.GitlabState, gitlab_api.build_app),
    "multitudes": (multitudes_api.MultitudesState, multitudes_api.build_app),
    "gitclear": (gitclear_api.GitclearState, gitclear_api.build_app),
}


class LoopbackServer:
    """A uvicorn server bound to 127.0.0.1 on a free port, stopped on exit."""

    def __init__(self, app, port: int = 0):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self.port = self._sock.getsockname()[1]
        # a hung answer (a fault the sandbox injects) must not hold up stopping the server
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LoopbackServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("sandbox server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


@dataclass
class Sandbox:
    """Every emulator over one simulated world, each served on its own loopback port."""

    world: World
    states: dict[str, EmulatorState]
    servers: dict[str, LoopbackServer]

    @classmethod
    def start(
        cls,
        seed: int = DEFAULT_SEED,
        as_of: datetime = DEFAULT_AS_OF,
        services: tuple[ServiceSpec, ...] = DEFAULT_SERVICES,
        faults: FaultProfile | None = None,
        shape: OrgShape | None = None,
    ) -> Sandbox:
        """The emulators over the history of `services`, or of the organisation `shape` makes of
        them (how many, how long, how busy), observed at `as_of`."""
        shape = shape or OrgShape(services=len(services))
        start, horizon_days = shape.history(as_of)
        world = build_world(seed, start, horizon_days, shape.service_specs(services))
        states = {name: state_cls(world, as_of, f"sandbox-{name}-token") for name, (state_cls, _) in EMULATORS.items()}
        for name, state in states.items():
            state.set_fault_profile(faults or FaultProfile(), name)
        servers = {}
        try:
            for name, (_, build_app) in EMULATORS.items():
                servers[name] = LoopbackServer(with_faults(build_app(states[name]), states[name])).start()
        except Exception:
            for server in servers.values():
                server.stop()
            raise
        return cls(world, states, servers)

    @property
    def gearset(self) -> GearsetState:
        return self.states["gearset"]

    @property
    def as_of(self) -> datetime:
        return self.gearset.as_of

    def set_as_of(self, as_of: datetime) -> None:
        for state in self.states.values():
            state.set_as_of(as_of)

    def warm(self) -> None:
        """Every emulator's indexes of the current `as_of` built now, not on its first request."""
        for state in self.states.values():
            state.warm()

    def set_fault_profile(self, profile: FaultProfile) -> None:
        """Faults from now on, drawn afresh from the profile's seed by every emulator."""
        for name, state in self.states.items():
            state.set_fault_profile(profile, name)

    def requests_received(self) -> int:
        """Requests the emulators received since the profile was set, faulted ones included."""
        return sum(state.received for state in self.states.values())

    def faults_injected(self) -> dict[str, int]:
        """How many faults of each kind the emulators injected since the profile was set."""
        total: dict[str, int] = {}
        for state in self.states.values():
            for kind, count in state.injected.items():
                total[kind] = total.get(kind, 0) + count
        return dict(sorted(total.items()))

    def base_url(self, source: str) -> str:
        return self.servers[source].base_url

    def requests(self, emulator: str) -> list[dict]:
        return self.states[emulator].requests

    def source_environment(self) -> dict[str, str]:
        """The `SOURCES__...` settings that point every dlt source at this sandbox (the sources of
        the tools the world's services use)."""
        start = (self.world.start - timedelta(days=1)).isoformat()
        gitlab_projects = self.world.services_in(GITLAB)
        ci_jobs = self.world.services_in(CI_JOBS)
        settings = {
            GEARSET: {
                "SOURCES__GEARSET__BASE_URL": self.base_url("gearset"),
                "SOURCES__GEARSET__API_TOKEN": self.gearset.token,
                "SOURCES__GEARSET__PIPELINE_IDS": json.dumps([s.service_id for s in self.world.services_in(GEARSET)]),
                "SOURCES__GEARSET__START_DATE": start,
                "SOURCES__GEARSET__POLL_INTERVAL_SECONDS": "0.05",
            },
            GITLAB: {
                "SOURCES__GITLAB__BASE_URL": self.base_url("gitlab") + "/api/v4",
                "SOURCES__GITLAB__PRIVATE_TOKEN": self.states["gitlab"].token,
                # one project by full path, the others by numeric id: both must work
                "SOURCES__GITLAB__PROJECTS": json.dumps(
                    [p.project_path for p in gitlab_projects[:1]] + [s.project_id for s in gitlab_projects[1:]]
                ),
                "SOURCES__GITLAB__START_DATE": start,
            },
            MULTITUDES: {
                "SOURCES__MULTITUDES__BASE_URL": self.base_url("multitudes"),
                "SOURCES__MULTITUDES__API_TOKEN": self.states["multitudes"].token,
                "SOURCES__MULTITUDES__START_DATE": start,
            },
            GITCLEAR: {
                "SOURCES__GITCLEAR__BASE_URL": self.base_url("gitclear") + "/api/v1",
                "SOURCES__GITCLEAR__API_TOKEN": self.states["gitclear"].token,
                "SOURCES__GITCLEAR__RESOURCE_PATHS": json.dumps(
                    [s.repository_path for s in self.world.services_in(GITCLEAR)]
                ),
                "SOURCES__GITCLEAR__START_DATE": start,
            },
            CI_JOBS: {
                "SOURCES__GEARSET_AUTOMATION__BASE_URL": self.base_url("gearset"),
                "SOURCES__GEARSET_AUTOMATION__API_TOKEN": self.gearset.token,
                "SOURCES__GEARSET_AUTOMATION__CI_JOB_IDS": json.dumps([s.service_id for s in ci_jobs]),
                "SOURCES__GEARSET_AUTOMATION__JOB_SERVICES": json.dumps({s.service_id: s.name for s in ci_jobs}),
                "SOURCES__GEARSET_AUTOMATION__START_DATE": start,
                "SOURCES__GEARSET_AUTOMATION__POLL_INTERVAL_SECONDS": "0.05",
            },
        }
        used = {tool for service in self.world.services for tool in service.tools}
        return {name: value for tool, values in settings.items() if tool in used for name, value in values.items()}

    def service_teams(self) -> dict[str, str]:
        return {s.name: s.team for s in self.world.services}

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
