-- Multitudes deployments in the unified shape. Multitudes' rule: records with the same commits
-- and environment are one deployment and the latest received wins; the others are kept with
-- `is_superseded` so int_deployments can exclude them as duplicates. Multitudes keeps no status
-- (CI posts successful deployments); production is an environment name starting with `prod`.
-- Incremental (macros/refresh_horizon.sql): a record loaded again sets the horizon at or before
-- its own time and the times of every record with its commits and environment, so whether a
-- record before the horizon is superseded never changes. Every record is ranked, and the ones from
-- the horizon on are written.
-- depends_on: {{ ref('int_refresh_loads') }}
{{ config(**horizon_config('sources', horizon_anchor('deployments'), 'deployment_id')) }}

{%- set since = horizon_start('sources') if is_incremental() else none %}

with deployments as (
    select *, {{ sorted_list('commit_shas') }} as commit_set from {{ ref('stg_multitudes__deployments') }}
),

ranked as (
    select
        deployments.*,
        row_number() over (
            partition by deployments.commit_set, deployments.environment_name
            order by deployments.received_at desc nulls last, deployments.deployment_id desc
        ) > 1 as is_superseded
    from deployments
)

select
    'multitudes:' || deployment_id as deployment_id,
    'multitudes' as source,
    deployment_id as source_deployment_id,
    {{ service_of('multitudes', "coalesce(repository, '')") }} as service,
    environment_name as environment,
    coalesce(lower(environment_name) like 'prod%', false) as is_production,
    'succeeded' as status,
    deployed_at,
    cast(null as varchar) as revision,
    coalesce(is_test, false) as is_test,
    false as is_empty,
    {{ list_has('tags', "'is_fix'") }} as is_fix,
    {{ list_has('tags', "'is_rollback'") }} as is_rollback,
    {{ list_has('tags', "'is_failure'") }} as is_failure_reported,
    is_superseded
from ranked
{%- if since %}
where {{ horizon_anchor('deployments') }} >= {{ since }}
{%- endif %}
