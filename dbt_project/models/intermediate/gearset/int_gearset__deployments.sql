-- Gearset deployments in the unified shape. Gearset has no fix or rollback flag: a deployment
-- is a fix when it promotes a `hotfix/` feature branch and a rollback when it promotes a
-- `revert/` branch or a pull request titled `Revert ...` (the README documents the convention).
with deployments as (
    select * from {{ ref('stg_gearset__deployments') }}
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
