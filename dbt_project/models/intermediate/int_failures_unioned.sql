-- Every enabled source's failures, one union.
-- A view: its readers select the rows of the horizon, and the filter reaches each source's table.
{{ config(materialized='view') }}
{{ union_sources('failures', {
    'failure_id': 'varchar', 'source': 'varchar', 'source_failure_id': 'varchar', 'title': 'varchar',
    'severity': 'bigint', 'detected_at': 'timestamp', 'resolved_at': 'timestamp',
    'caused_by_deployment_id': 'varchar', 'fixed_by_deployment_id': 'varchar', 'source_service': 'varchar'}) }}
