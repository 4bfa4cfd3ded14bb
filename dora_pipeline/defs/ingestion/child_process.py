"""Run the sources' extraction in a child process, so the memory it takes leaves with that process.

The refresh runs its steps in one process, and dbt's build then runs beside it in a process of its
own. Python frees an extraction's objects but keeps most of their memory: its small-object
allocator returns a 1 MiB arena to the system only when every object in it is gone, and
objects that outlive the extraction are scattered through the arenas the records used. At a
million deployments the refresh's process still held 765 MiB through dbt's first build (126 MB
of it live objects), and the two together went over 2 GB. A forked child inherits everything the
step has built (settings, sources, test doubles), extracts, streams back what the step yields and
exits; the system takes back all it used.

Fork, not spawn: a fresh interpreter would import dlt and Dagster again (seconds per refresh) and
lose whatever the parent configured in code. The child touches nothing of Dagster's but the step's
context, read-only; its log lines travel back with its results and the parent logs them.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any

# Linux's prctl option: the signal a process gets when its parent dies
PR_SET_PDEATHSIG = 1


class ExtractionProcessDied(RuntimeError):
    """The child ended without saying it was done: killed (out of memory, a signal) or crashed."""


def run_in_child(work: Callable[[], Iterator[Any]]) -> Iterator[Any]:
    """Yield, in this process, what `work()` yields in a forked child, as it yields it. An
    exception raised in the child is raised here (the same class when it pickles, otherwise a
    RuntimeError carrying its traceback). Where fork is unavailable, `work` runs here."""
    if "fork" not in multiprocessing.get_all_start_methods():
        yield from work()
        return
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(target=_serve, args=(work, sending, os.getpid()), name="dora-extraction", daemon=True)
    child.start()
    sending.close()  # the child's end: once the child is gone, a read here fails instead of waiting
    finished = False
    try:
        while True:
            try:
                kind, payload = receiving.recv()
            except EOFError:
                child.join()
                raise ExtractionProcessDied(
                    f"the extraction's process ended with exit code {child.exitcode} before it finished"
                    + (" (killed: out of memory?)" if child.exitcode == -signal.SIGKILL else "")
                ) from None
            if kind == "item":
                yield payload
                continue
            finished = True
            if kind == "error":
                raise payload
            return
    finally:
        receiving.close()
        if not finished:  # the parent stopped reading (its step was interrupted): so does the child
            child.kill()
        child.join()


def _serve(work: Callable[[], Iterator[Any]], sending, parent: int) -> None:
    _die_with(parent)
    try:
        for item in work():
            sending.send(("item", item))
    except BaseException as exc:  # noqa: BLE001 - whatever ends the work goes back to the parent
        exc.add_note("in the extraction's process:\n" + "".join(traceback.format_tb(exc.__traceback__)))
        sending.send(("error", _picklable(exc)))
    else:
        sending.send(("done", None))
    finally:
        sending.close()


def _die_with(parent: int) -> None:
    """A refresh killed outright (SIGKILL, a machine's OOM killer) takes its extraction with it:
    left alone, the child would go on loading into a warehouse the next refresh is cleaning up.
    Linux's parent-death signal does it; elsewhere the child only ends with its work."""
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
    if libc is not None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was set
        os._exit(1)


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any exception that cannot cross goes as its text
        return RuntimeError("".join(traceback.format_exception(exc)).strip())
