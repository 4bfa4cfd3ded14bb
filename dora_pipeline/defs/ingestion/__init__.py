"""Raw extraction: one dlt pipeline per source, each dlt resource a Dagster asset."""
