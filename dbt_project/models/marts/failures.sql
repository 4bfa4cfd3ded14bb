-- One row per production failure with both recovery durations and how it was linked.
-- Incremental like int_failures (macros/refresh_horizon.sql): the rows from the horizon on.
-- depends_on: {{ ref('int_refresh_horizon') }}
{{ config(**horizon_config('loads', horizon_anchor('failures'), 'failure_id')) }}
select
    failure_id,
    source,
    source_failure_id,
    service,
    team,
    environment,
    title,
    severity,
    is_qualifying,
    detected_at,
    resolved_at,
    resolved_at is null as is_open,
    caused_by_deployment_id,
    caused_by_deployed_at,
    link_method,
    fixed_by_deployment_id,
    recovery_time_seconds,
    time_to_restore_seconds
from {{ ref('int_failures') }}
{%- if is_incremental() %}
where {{ horizon_anchor('failures') }} >= {{ horizon_start('loads') }}
{%- endif %}
