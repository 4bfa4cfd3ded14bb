"""Run the sandbox emulators on loopback, each on its own port, in a background thread."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import uvicorn

from dora_pipeline.sandbox.gearset_api import GearsetState, build_app
from dora_pipeline.sandbox.world import DEFAULT_AS_OF, DEFAULT_SEED, World, build_world

SANDBOX_TOKEN = "sandbox-token-not-a-secret"


class LoopbackServer:
    """A uvicorn server bound to 127.0.0.1 on a free port, stopped on exit."""

    def __init__(self, app, port: int = 0):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
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
    """Every emulator over one simulated world, served on loopback."""

    world: World
    gearset: GearsetState
    servers: dict[str, LoopbackServer]

    @classmethod
    def start(cls, seed: int = DEFAULT_SEED, as_of: datetime = DEFAULT_AS_OF, token: str = SANDBOX_TOKEN) -> Sandbox:
        world = build_world(seed)
        gearset = GearsetState(world, as_of, token)
        servers = {"gearset": LoopbackServer(build_app(gearset)).start()}
        return cls(world, gearset, servers)

    def set_as_of(self, as_of: datetime) -> None:
        self.gearset.set_as_of(as_of)

    @property
    def as_of(self) -> datetime:
        return self.gearset.as_of

    def base_url(self, source: str) -> str:
        return self.servers[source].base_url

    def source_environment(self) -> dict[str, str]:
        """The `SOURCES__...` settings that point every dlt source at this sandbox."""
        return {
            "SOURCES__GEARSET__BASE_URL": self.base_url("gearset"),
            "SOURCES__GEARSET__API_TOKEN": self.gearset.token,
            "SOURCES__GEARSET__PIPELINE_IDS": json.dumps([s.service_id for s in self.world.services]),
            "SOURCES__GEARSET__START_DATE": (self.world.start - timedelta(days=1)).isoformat(),
            "SOURCES__GEARSET__POLL_INTERVAL_SECONDS": "0.05",
        }

    def service_teams(self) -> dict[str, str]:
        return {s.name: s.team for s in self.world.services}

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
