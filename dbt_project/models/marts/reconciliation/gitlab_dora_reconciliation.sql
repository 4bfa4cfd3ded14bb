-- GitLab's DORA API values beside the same numbers computed GitLab's way from the raw records
-- we extracted, per project, metric and day. GitLab's way (not our definitions): successful
-- production-tier deployments by finish day; lead time = median merge -> finish over the day's
-- deployments' merge requests (negatives clamped to 0, backlog included); change failure rate =
-- incidents opened that day / max(deployments that day, 1); time to restore = median open time
-- of incidents closed that day. A non-zero difference means the extraction missed something.
with deployments as (
    select deployments.*
    from {{ ref('stg_gitlab__deployments') }} as deployments
    inner join {{ ref('stg_gitlab__environments') }} as environments
        on deployments.environment_id = environments.environment_id and environments.is_production
    where deployments.status = 'succeeded'
),

incidents as (
    select * from {{ ref('stg_gitlab__incidents') }}
),

deploy_days as (
    select project_id, cast(finished_at as date) as metric_date, count(*) as deployments
    from deployments {{ group_by(2) }}
),

lead_days as (
    select
        deployments.project_id,
        cast(deployments.finished_at as date) as metric_date,
        {{ percentile('greatest(0, ' ~ epoch_seconds('deployments.finished_at') ~ ' - ' ~ epoch_seconds('links.merged_at') ~ ')', 0.5) }} as lead_time
    from deployments
    inner join {{ ref('stg_gitlab__deployment_merge_requests') }} as links
        on deployments.deployment_id = links.deployment_id
    {{ group_by(2) }}
),

opened_days as (
    select project_id, cast(detected_at as date) as metric_date, count(*) as incidents
    from incidents {{ group_by(2) }}
),

restore_days as (
    select project_id, cast(resolved_at as date) as metric_date,
        {{ percentile(epoch_seconds('resolved_at') ~ ' - ' ~ epoch_seconds('detected_at'), 0.5) }} as time_to_restore
    from incidents where resolved_at is not null {{ group_by(2) }}
),

days as (
    select project_id, metric_date from deploy_days
    union select project_id, metric_date from opened_days
    union select project_id, metric_date from restore_days
),

ours as (
    select days.project_id, days.metric_date, metric, value
    from days
    left join deploy_days using (project_id, metric_date)
    left join lead_days using (project_id, metric_date)
    left join opened_days using (project_id, metric_date)
    left join restore_days using (project_id, metric_date)
    cross join lateral (
        values
            ('deployment_frequency', cast(coalesce(deploy_days.deployments, 0) as double precision)),
            ('lead_time_for_changes', lead_days.lead_time),
            ('change_failure_rate', {{ divide('coalesce(opened_days.incidents, 0)', 'greatest(coalesce(deploy_days.deployments, 0), 1)') }}),
            ('time_to_restore_service', restore_days.time_to_restore)
    ) as computed(metric, value)
),

theirs as (
    select * from {{ ref('stg_gitlab__dora_metrics') }}
)

select
    coalesce(ours.project_id, theirs.project_id) as project_id,
    {{ service_of('gitlab', 'cast(coalesce(ours.project_id, theirs.project_id) as varchar)') }} as service,
    coalesce(ours.metric, theirs.metric) as metric,
    coalesce(ours.metric_date, theirs.metric_date) as metric_date,
    theirs.value as gitlab_value,
    ours.value as computed_value,
    ours.value - theirs.value as difference,
    case
        when theirs.project_id is null then 'missing_in_gitlab'
        when ours.project_id is null then 'missing_in_extraction'
        when coalesce(ours.value, 0) = coalesce(theirs.value, 0)
            and (ours.value is null) = (theirs.value is null) then 'match'
        when abs(coalesce(ours.value, 0) - coalesce(theirs.value, 0)) < 1e-6 then 'match'
        else 'differs'
    end as status
from ours
full outer join theirs
    on ours.project_id = theirs.project_id
    and ours.metric = theirs.metric
    and ours.metric_date = theirs.metric_date
