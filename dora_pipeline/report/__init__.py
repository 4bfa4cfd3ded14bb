"""A self-contained HTML report from the published warehouse, for people rather than SQL.

One file that opens anywhere without a network: the data as embedded JSON, the page from a
Jinja2 template, and plotly.js inlined gzip-compressed (the browser inflates it with its own
DecompressionStream), which keeps the file near 2 MB instead of 5. The page draws everything
for the scope chosen in its team and service selectors: one tile per metric, a weekly chart per
metric with the benchmark bands, the lead-time stages, and the drill-down tables.
"""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

from jinja2 import Environment, PackageLoader
from plotly.offline import get_plotlyjs

from dora_pipeline import warehouse
from dora_pipeline.report.data import METRICS, RECENT_DAYS, read_report_data
from dora_pipeline.settings import Settings

__all__ = ["METRICS", "Report", "build_report"]


@dataclass
class Report:
    path: Path
    charts: int
    size_bytes: int


def build_report(settings: Settings, output: Path) -> Report:
    """The report of the published warehouse `settings` names, written to `output`."""
    with warehouse.connect(settings, read_only=True) as con:
        data = read_report_data(con)
    environment = Environment(loader=PackageLoader("dora_pipeline.report"), autoescape=True)
    page = environment.get_template("report.html.j2").render(
        data=data,
        recent_days=RECENT_DAYS,
        data_json=_script_safe_json(data),
        plotly_gzip_base64=_plotly_gzip_base64(),
        style=environment.loader.get_source(environment, "report.css")[0],
        script=environment.loader.get_source(environment, "report.js")[0],
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(f".{output.name}.tmp")
    staging.write_text(page, encoding="utf-8")
    staging.replace(output)
    # One chart per metric and the lead-time stages.
    return Report(output, len(METRICS) + 1, output.stat().st_size)


@cache
def _plotly_gzip_base64() -> str:
    return base64.b64encode(gzip.compress(get_plotlyjs().encode(), compresslevel=9, mtime=0)).decode("ascii")


def _script_safe_json(data: dict) -> str:
    """JSON that can sit inside <script>: '</' and '<!--' cannot end or confuse the element."""
    text = json.dumps(data, default=_json_value, ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _json_value(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"report data holds a {type(value).__name__}, which JSON cannot carry")
