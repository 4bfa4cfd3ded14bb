"""One refresh of a warehouse at a time, and nothing left behind by one that was killed.

A refresh marks itself and every process it starts (dbt runs as a subprocess) with
`DORA_REFRESH_RUN=<token>` in their environment and writes the token and its pid to
`<data>/refresh.lock`. When a refresh is killed (SIGKILL, a machine going down), its children
survive it: a `dbt build` may keep running and hold the build file's lock, and half-written files
stay on disk. The next refresh finds the lock, sees that its owner is gone, stops every process
still carrying the old token, and removes the debris (see `publish.clean_debris`). While the
owner is alive, a second refresh is refused with a clear error instead of meeting DuckDB's lock.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dora_pipeline import warehouse
from dora_pipeline.publish import clean_debris
from dora_pipeline.settings import Settings
from dora_pipeline.sources.http import SourceError

MARK = "DORA_REFRESH_RUN"


class RefreshRunning(SourceError):
    def __init__(self, pid: int | None, lock: Path):
        message = "another refresh of this warehouse is running" + (f" (pid {pid})" if pid else "")
        super().__init__("dora", message, hint=f"wait for it to finish, or stop it (lock: {lock})")


def processes_marked(token: str) -> list[int]:
    """Pids of the live processes whose environment carries this refresh's token."""
    needle = f"{MARK}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks (so a reused pid is not mistaken for it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _stop(pids: list[int], grace_seconds: float = 5.0) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
        time.sleep(0.1)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _claim(lock: Path, line: str) -> bool:
    """Create the lock file with our line, unless it exists (atomic: O_EXCL)."""
    try:
        handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(handle, "w") as file:
        file.write(line)
    return True


@contextmanager
def refresh_lock(settings: Settings) -> Iterator[str]:
    """Hold the warehouse's refresh lock; clean up after a killed predecessor first.

    Re-entrant within one process: the command line takes it before Dagster starts, and the run
    takes it again (see `defs/locking.py`) so runs a Dagster daemon launches are covered too. A
    process the holder started re-enters it by the holder's mark."""
    lock = settings.data_dir / "refresh.lock"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    me = f"{os.getpid()} {_started(os.getpid())}"
    token = uuid.uuid4().hex
    for _ in range(5):
        if _claim(lock, f"{me} {token}\n"):
            break
        try:
            fields, age = lock.read_text().split(), time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            continue  # released (or cleared) just now: try to claim it again
        if len(fields) == 3 and (" ".join(fields[:2]) == me or os.environ.get(MARK) == fields[2]):
            yield fields[2]  # this process, or the refresh that started it, holds it
            return
        if len(fields) != 3 and age < 2:
            time.sleep(0.2)  # another refresh is writing its line this instant
            continue
        if len(fields) == 3:
            pid, started, old_token = int(fields[0]), fields[1], fields[2]
            if _started(pid) == started:
                raise RefreshRunning(pid, lock)
            _stop(processes_marked(old_token))
        clean_debris(settings)
        lock.unlink(missing_ok=True)
    else:
        raise RefreshRunning(None, lock)
    previous = os.environ.get(MARK)
    os.environ[MARK] = token
    try:
        yield token
    finally:
        warehouse.wait_for_build_file(settings)  # the build file publishing copies back is whole before the lock goes
        if previous is None:
            os.environ.pop(MARK, None)
        else:
            os.environ[MARK] = previous
        lock.unlink(missing_ok=True)
