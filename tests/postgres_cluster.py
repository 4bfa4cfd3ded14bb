"""A throwaway PostgreSQL server for the tests: Debian's binaries, a new cluster in a temporary
folder, on a free loopback port, with a password (so the tests prove the password reaches dlt and
dbt and goes nowhere else). PostgreSQL refuses to run as root, and CI runs as root: the cluster is
then owned by and run as the `postgres` user the Debian package creates."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

USER = "dora"


def _bin_dir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise RuntimeError("PostgreSQL's server binaries are missing: apt-get install postgresql (.ci/run does)")
    return versions[-1].parent


@dataclass
class Cluster:
    host: str
    port: int
    password: str = field(repr=False)

    def environment(self, database: str) -> dict[str, str]:
        """dlt's configuration of its postgres destination, which dora-pipeline reads too."""
        prefix = "DESTINATION__POSTGRES__CREDENTIALS__"
        return {
            f"{prefix}HOST": self.host,
            f"{prefix}PORT": str(self.port),
            f"{prefix}DATABASE": database,
            f"{prefix}USERNAME": USER,
            f"{prefix}PASSWORD": self.password,
        }

    def connect(self, database: str = "postgres"):
        import psycopg2

        con = psycopg2.connect(host=self.host, port=self.port, user=USER, password=self.password, dbname=database)
        con.autocommit = True
        return con

    def create_database(self, name: str) -> None:
        con = self.connect()
        try:
            with con.cursor() as cursor:
                cursor.execute(f'drop database if exists "{name}" with (force)')
                cursor.execute(f'create database "{name}"')
        finally:
            con.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_cluster() -> Iterator[Cluster]:
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="dora-pg-"))
    run_as = "postgres" if os.geteuid() == 0 else None
    password = secrets.token_urlsafe(16)
    password_file = root / "password"
    password_file.write_text(password + "\n")
    if run_as:
        owner = pwd.getpwnam(run_as)
        for path in (root, password_file):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    data = root / "data"

    def run(*args: object) -> None:
        subprocess.run([str(a) for a in args], user=run_as, check=True, capture_output=True, text=True)

    run(
        bin_dir / "initdb",
        "-D",
        data,
        "-U",
        USER,
        "--auth=scram-sha-256",
        f"--pwfile={password_file}",
        "-E",
        "UTF8",
        "--locale=C",
    )
    port = _free_port()
    # Durability off: a test cluster is thrown away, and fsync per commit is most of its time.
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=200"
    )
    run(bin_dir / "pg_ctl", "-D", data, "-l", root / "server.log", "-w", "-o", options, "start")
    try:
        yield Cluster("127.0.0.1", port, password)
    finally:
        subprocess.run(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], user=run_as, capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)
