-- GitLab deployments in the unified shape. Fix and rollback follow the same branch/title
-- convention as Gearset, read from the merge requests GitLab links to the deployment.
-- Incremental (macros/refresh_horizon.sql): a deployment loaded again, or its merge requests,
-- set the horizon at or before its time, so the deployments from the horizon on are rebuilt and
-- the earlier ones kept.
-- depends_on: {{ ref('int_refresh_loads') }}
{{ config(**horizon_config('sources', horizon_anchor('deployments'), 'deployment_id')) }}

{%- set since = horizon_start('sources') if is_incremental() else none %}

with deployments as (
    select * from {{ ref('stg_gitlab__deployments') }}
    {%- if since %}
    where {{ horizon_anchor('deployments') }} >= {{ since }}
    {%- endif %}
),

remedies as (
    select
        deployment_id,
        bool_or(source_branch ilike 'hotfix/%') as is_fix,
        bool_or(source_branch ilike 'revert/%' or title ilike 'revert %') as is_rollback
    from {{ ref('stg_gitlab__deployment_merge_requests') }}
    {%- if since %}
    where deployment_id in (select deployment_id from deployments)
    {%- endif %}
    group by deployment_id
)

select
    'gitlab:' || deployments.deployment_id as deployment_id,
    'gitlab' as source,
    cast(deployments.deployment_id as varchar) as source_deployment_id,
    {{ service_of('gitlab', 'cast(deployments.project_id as varchar)') }} as service,
    coalesce(environments.environment_name, deployments.environment_name) as environment,
    coalesce(environments.is_production, false) as is_production,
    deployments.status,
    deployments.deployed_at,
    deployments.sha as revision,
    false as is_test,
    false as is_empty,
    coalesce(remedies.is_fix, false) as is_fix,
    coalesce(remedies.is_rollback, false) as is_rollback,
    false as is_failure_reported
from deployments
left join {{ ref('stg_gitlab__environments') }} as environments
    on deployments.environment_id = environments.environment_id
left join remedies on deployments.deployment_id = remedies.deployment_id
