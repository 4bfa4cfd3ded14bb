-- Multitudes deployments in the unified shape. Multitudes' rule: records with the same commits
-- and environment are one deployment and the latest received wins; the others are kept with
-- `is_superseded` so int_deployments can exclude them as duplicates. Multitudes keeps no status
-- (CI posts successful deployments); production is an environment name starting with `prod`.
with deployments as (
    select *, {{ sorted_list('commit_shas') }} as commit_set from {{ ref('stg_multitudes__deployments') }}
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
    row_number() over (
        partition by commit_set, environment_name
        order by received_at desc nulls last, deployment_id desc
    ) > 1 as is_superseded
from deployments
