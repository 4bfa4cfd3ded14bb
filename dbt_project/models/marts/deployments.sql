-- One row per deployment of every source: the drill-down behind deployment frequency.
-- Incremental like int_deployments (macros/refresh_horizon.sql): the rows from the horizon on.
-- depends_on: {{ ref('int_refresh_horizon') }}
{{ config(**horizon_config('loads', horizon_anchor('deployments'), 'deployment_id')) }}
select
    deployment_id,
    source,
    source_deployment_id,
    service,
    team,
    environment,
    is_production,
    status,
    deployed_at,
    revision,
    is_test,
    is_empty,
    is_fix,
    is_rollback,
    is_failure_reported,
    duplicate_of,
    is_counted,
    exclusion_reason,
    is_first_counted_in_environment
from {{ ref('int_deployments') }}
{%- if is_incremental() %}
where {{ horizon_anchor('deployments') }} >= {{ horizon_start('loads') }}
{%- endif %}
