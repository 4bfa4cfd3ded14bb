"""A Dagster logger that says how a refresh is getting on, for the command line: one line per
finished step (for each source its requests and rows loaded), and under dbt's step one line per
layer with its models and tests. dbt's own per-node output goes to its log file instead."""

import logging
import sys
import time
from collections import Counter, defaultdict

from dagster import DagsterEventType, InitLoggerContext, logger

STEP_NAMES = {
    "dora_dbt_models": "build and test the warehouse (dbt)",
    "published_warehouse": "publish the warehouse and Parquet",
    "dora_report": "write the report",
    "extraction_health": "check every source's outcome",
}
LAYERS = ("staging", "intermediate", "marts", "reconciliation")


def describe(step_key: str) -> str:
    if step_key.endswith("_raw"):
        return f"extract and load {step_key.removesuffix('_raw')}"
    return STEP_NAMES.get(step_key, step_key)


def layer(asset_name: str) -> str:
    """The dbt layer of a model, from the project's naming (stg_, int_, *_reconciliation)."""
    if asset_name.startswith("stg_"):
        return "staging"
    if asset_name.startswith("int_"):
        return "intermediate"
    if asset_name.endswith("_reconciliation"):
        return "reconciliation"
    return "marts"


class _StepLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._started: dict[str, float] = {}
        self._rows: Counter[str] = Counter()
        self._requests: dict[str, int] = {}
        self._models: dict[str, Counter[str]] = defaultdict(Counter)
        self._tests: dict[str, Counter[tuple[str, bool]]] = defaultdict(Counter)

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        if event is None or not event.step_key:
            return
        step = event.step_key
        if event.event_type == DagsterEventType.STEP_START:
            self._started[step] = time.monotonic()
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.event_specific_data.materialization
            metadata = materialization.metadata
            if "rows_loaded" in metadata:
                self._rows[step] += metadata["rows_loaded"].value
            if "source_requests" in metadata:
                self._requests[step] = metadata["source_requests"].value
            if step == "dora_dbt_models":
                self._models[step][layer(materialization.asset_key.path[-1])] += 1
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            self._tests[step][(layer(evaluation.asset_key.path[-1]), evaluation.passed)] += 1
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            self._finished(step, event.event_type == DagsterEventType.STEP_SUCCESS)

    def _finished(self, step: str, succeeded: bool) -> None:
        took = time.monotonic() - self._started.get(step, time.monotonic())
        line = f"  {describe(step):<38}{'done' if succeeded else 'failed':>7} in {took:5.1f} s"
        if step in self._requests:
            line += f"  {self._requests[step]:>7,} requests  {self._rows[step]:>9,} rows"
        lines = [line]
        for name in LAYERS:
            models, passed = self._models[step][name], self._tests[step][(name, True)]
            failed = self._tests[step][(name, False)]
            if models or passed or failed:
                tests = f"{passed:>4} tests passed" + (f", {failed} failed" if failed else "")
                lines.append(f"      {name:<16}{models:>4} models  {tests}")
        sys.stderr.write("\n".join(lines) + "\n")
        sys.stderr.flush()


@logger(description="One line per finished step and per dbt layer (the command line's progress).")
def step_progress(init_context: InitLoggerContext) -> logging.Logger:
    progress = logging.getLogger("dora_pipeline.progress")
    progress.setLevel(logging.DEBUG)
    progress.handlers = [_StepLines()]
    progress.propagate = False
    return progress
