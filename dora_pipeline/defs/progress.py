"""A Dagster logger that says how a refresh is getting on, for the command line: one line per
source as its extraction ends (its requests and rows loaded), one per later step as it ends, and
under dbt's step one line per layer with its models and tests. dbt's own per-node output goes to
its log file instead."""

import logging
import sys
import time
from collections import Counter, defaultdict

from dagster import DagsterEventType, InitLoggerContext, logger

from dora_pipeline.defs.ingestion.assets import EXTRACTION_STEP

STEP_NAMES = {
    EXTRACTION_STEP: "extract and load the sources",
    "dora_dbt_models": "build and test the warehouse (dbt)",
    "published_warehouse": "publish the warehouse and Parquet",
    "dora_report": "write the report",
    "extraction_health": "check every source's outcome",
}
LAYERS = ("staging", "intermediate", "marts", "reconciliation")


def describe(step_key: str) -> str:
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
        self._sources_told: set[str] = set()
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
            if "source_seconds" in metadata:
                self._source_finished(metadata)
            if step == "dora_dbt_models":
                self._models[step][layer(materialization.asset_key.path[-1])] += 1
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            self._tests[step][(layer(evaluation.asset_key.path[-1]), evaluation.passed)] += 1
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            self._finished(step, event.event_type == DagsterEventType.STEP_SUCCESS)

    def _source_finished(self, metadata: dict) -> None:
        """Every table of a source carries the source's figures: told once, at its first table."""
        source = metadata["source"].value
        if source in self._sources_told:
            return
        self._sources_told.add(source)
        outcome = "failed" if "extraction" in metadata else "done"
        line = (
            f"  {'extract and load ' + source:<38}{outcome:>7} in {metadata['source_seconds'].value:5.1f} s"
            f"  {metadata['source_requests'].value:>7,} requests  {metadata['source_rows'].value:>9,} rows"
        )
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def _finished(self, step: str, succeeded: bool) -> None:
        took = time.monotonic() - self._started.get(step, time.monotonic())
        lines = [f"  {describe(step):<38}{'done' if succeeded else 'failed':>7} in {took:5.1f} s"]
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
