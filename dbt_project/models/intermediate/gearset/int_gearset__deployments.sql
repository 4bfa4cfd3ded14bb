-- Gearset deployments in the unified shape. Gearset has no fix or rollback flag: a deployment
-- is a fix when it promotes a `hotfix/` feature branch and a rollback when it promotes a
-- `revert/` branch or a pull request titled `Revert ...` (the README documents the convention).
-- Incremental (macros/refresh_horizon.sql): a deployment loaded again, or one of its pull
-- requests, sets the horizon at or before its date, so the deployments from the horizon on are
-- rebuilt and the earlier ones kept.
-- depends_on: {{ ref('int_refresh_loads') }}
{{ config(**horizon_config('sources', 'deployed_at', 'deployment_id')) }}

{%- set since = horizon_start('sources') if is_incremental() else none %}

with deployments as (
    select * from {{ ref('stg_gearset__deployments') }}
    {%- if since %}
    where deployed_at >= {{ since }}
    {%- endif %}
),

environments as (
    select * from {{ ref('stg_gearset__environments') }}
),

remedies as (
    select
        deployment_id,
        bool_or(feature_name ilike 'hotfix/%') as is_fix,
        bool_or(feature_name ilike 'revert/%' or title ilike 'revert %') as is_rollback
    from {{ ref('stg_gearset__deployment_pull_requests') }}
    {%- if since %}
    where deployment_id in (select deployment_id from deployments)
    {%- endif %}
    group by deployment_id
)

select
    'gearset:' || deployments.deployment_id as deployment_id,
    'gearset' as source,
    deployments.deployment_id as source_deployment_id,
    {{ service_of('gearset', 'deployments.pipeline_id') }} as service,
    coalesce(environments.environment_name, deployments.environment_id) as environment,
    coalesce(environments.is_production, false) as is_production,
    deployments.status,
    deployments.deployed_at,
    cast(null as varchar) as revision,
    false as is_test,
    deployments.is_empty,
    coalesce(remedies.is_fix, false) as is_fix,
    coalesce(remedies.is_rollback, false) as is_rollback,
    false as is_failure_reported
from deployments
left join environments on deployments.environment_id = environments.environment_id
left join remedies on deployments.deployment_id = remedies.deployment_id
