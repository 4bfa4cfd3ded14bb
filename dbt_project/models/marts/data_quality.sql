-- Per source, service and entity (deployment, change, failure): how many records were extracted,
-- how many count, and how many were left out for each reason of the definitions.
with outcomes as (
    select source, service, 'deployment' as entity, coalesce(exclusion_reason, 'counted') as outcome
    from {{ ref('int_deployments') }}
    union all
    select source, service, 'change', coalesce(lead_time_exclusion_reason, 'counted')
    from {{ ref('int_changes') }}
    union all
    select
        source,
        service,
        'failure',
        case
            when caused_by_deployment_id is null then 'failure_without_deployment'
            when resolved_at is null then 'failure_unresolved'
            when recovery_time_seconds is null or time_to_restore_seconds is null then 'negative_duration'
            else 'counted'
        end
    from {{ ref('int_failures') }}
),

counted as (
    select source, coalesce(service, 'unknown') as service, entity, outcome, count(*) as records
    from outcomes
    group by all
)

select
    source,
    service,
    entity,
    outcome,
    records,
    sum(records) over (partition by source, service, entity) as records_extracted,
    records / sum(records) over (partition by source, service, entity) as share_of_extracted
from counted
