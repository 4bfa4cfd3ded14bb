"""The Dagster definitions `workspace.yaml` loads (`dagster dev -w workspace.yaml`)."""

from dora_pipeline.defs import build_definitions

defs = build_definitions()
