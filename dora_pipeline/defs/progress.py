"""A Dagster logger that says, one line per step, how a refresh is getting on: what the command
line shows while dbt's own output goes to its log file."""

import logging
import sys
import time

from dagster import DagsterEventType, InitLoggerContext, logger

STEP_NAMES = {
    "dora_dbt_models": "build and test the warehouse (dbt)",
    "published_warehouse": "publish the warehouse and Parquet",
    "dora_report": "write the report",
    "extraction_health": "check every source's outcome",
}


def describe(step_key: str) -> str:
    if step_key.endswith("_raw"):
        return f"extract and load {step_key.removesuffix('_raw')}"
    return STEP_NAMES.get(step_key, step_key)


class _StepLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._started: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        if event is None or not event.step_key:
            return
        if event.event_type == DagsterEventType.STEP_START:
            self._started[event.step_key] = time.monotonic()
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            took = time.monotonic() - self._started.get(event.step_key, time.monotonic())
            outcome = "done" if event.event_type == DagsterEventType.STEP_SUCCESS else "failed"
            sys.stderr.write(f"  {describe(event.step_key):<38}{outcome:>7} in {took:5.1f} s\n")
            sys.stderr.flush()


@logger(description="One line per finished step (the command line's progress).")
def step_progress(init_context: InitLoggerContext) -> logging.Logger:
    progress = logging.getLogger("dora_pipeline.progress")
    progress.setLevel(logging.DEBUG)
    progress.handlers = [_StepLines()]
    progress.propagate = False
    return progress
