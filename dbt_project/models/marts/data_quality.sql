-- Per source, service and entity: how many records were extracted, how many count, and how many
-- were left out for each reason of the definitions. Entities: deployment, change (its lead time),
-- change_merge_to_deploy and change_open_to_deploy (the variants, each with its own exclusions),
-- failure. A service that does not track failures gets a `failures_not_tracked` failure row whose
-- records are the failures it recorded anyway (0 when its tools record none). Records a source sent
-- that could not be loaded count as `rejected_record` (marts.rejected_records has them). Every row carries its
-- source's freshness: the status of its latest extraction and when its data was last extracted.
with outcomes as (
    select source, service, 'deployment' as entity, coalesce(exclusion_reason, 'counted') as outcome, 1 as records
    from {{ ref('int_deployments') }}
    union all
    select source, service, 'change', coalesce(lead_time_exclusion_reason, 'counted'), 1
    from {{ ref('int_changes') }}
    union all
    select source, service, 'change_merge_to_deploy', coalesce(merge_to_deploy_exclusion_reason, 'counted'), 1
    from {{ ref('int_changes') }}
    union all
    select source, service, 'change_open_to_deploy', coalesce(open_to_deploy_exclusion_reason, 'counted'), 1
    from {{ ref('int_changes') }}
    union all
    select
        source,
        service,
        'failure',
        case
            when not tracks_failures then 'failures_not_tracked'
            when caused_by_deployment_id is null then 'failure_without_deployment'
            when resolved_at is null then 'failure_unresolved'
            when recovery_time_seconds is null or time_to_restore_seconds is null then 'negative_duration'
            else 'counted'
        end,
        1
    from {{ ref('int_failures') }}
    union all
    select distinct source, service, 'failure', 'failures_not_tracked', 0
    from {{ ref('int_deployments') }}
    where not tracks_failures
    union all
    select source, service, entity, 'rejected_record', 1
    from {{ ref('rejected_records') }}
),

counted as (
    select source, coalesce(service, 'unknown') as service, entity, outcome, sum(records) as records
    from outcomes
    {{ group_by(4) }}
)

select
    counted.source,
    counted.service,
    counted.entity,
    counted.outcome,
    counted.records,
    cast(sum(counted.records) over (partition by counted.source, counted.service, counted.entity) as bigint)
        as records_extracted,
    {{ divide('counted.records', 'nullif(sum(counted.records) over (partition by counted.source, counted.service, counted.entity), 0)') }}
        as share_of_extracted,
    freshness.last_status as source_status,
    freshness.last_success_at as source_data_as_of
from counted
left join {{ ref('int_source_freshness') }} as freshness on counted.source = freshness.source
