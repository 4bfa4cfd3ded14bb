-- Every enabled source's deployments in the unified shape, one union.
-- A view: its readers select the rows of the horizon, and the filter reaches each source's table.
{{ config(materialized='view') }}
{{ union_sources('deployments', {
    'deployment_id': 'varchar', 'source': 'varchar', 'source_deployment_id': 'varchar', 'service': 'varchar',
    'environment': 'varchar', 'is_production': 'boolean', 'status': 'varchar', 'deployed_at': 'timestamp',
    'revision': 'varchar', 'is_test': 'boolean', 'is_empty': 'boolean', 'is_fix': 'boolean',
    'is_rollback': 'boolean', 'is_failure_reported': 'boolean', 'is_superseded': 'boolean'}) }}
