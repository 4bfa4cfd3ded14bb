-- GitClear's weekly report series beside the same figures from our failure records of the
-- repository's service (failures recorded by any source): defects detected in the week, and the
-- mean hours from detection to resolution of those resolved in the week. GitClear's `x` labels
-- carry no year, so weeks are dated by the end date in each point's url.
with per_repo as (
    select
        resource_path,
        week_end,
        max(value) filter (where segment = 'defect_detected_count') as gitclear_defects_detected,
        max(value) filter (where segment = 'mean_hours_to_resolved') as gitclear_mean_hours_to_resolved
    from {{ ref('stg_gitclear__report_points') }}
    {{ group_by(2) }}
),

points as (
    select
        {{ service_of('gitclear', 'per_repo.resource_path') }} as service,
        week_end,
        max(gitclear_defects_detected) as gitclear_defects_detected,
        max(gitclear_mean_hours_to_resolved) as gitclear_mean_hours_to_resolved
    from per_repo
    {{ group_by(2) }}
),

failures as (
    select * from {{ ref('int_failures') }}
),

ours as (
    select
        points.service,
        points.week_end,
        (select count(*) from failures
         where failures.service = points.service
            and cast(failures.detected_at as date) between points.week_end - 6 and points.week_end)
            as our_defects_detected,
        (select avg(time_to_restore_seconds) / 3600 from failures
         where failures.service = points.service
            and cast(failures.resolved_at as date) between points.week_end - 6 and points.week_end)
            as our_mean_hours_to_resolved
    from points
)

select
    points.service,
    points.week_end,
    points.gitclear_defects_detected,
    ours.our_defects_detected,
    points.gitclear_mean_hours_to_resolved,
    ours.our_mean_hours_to_resolved,
    ours.our_defects_detected - points.gitclear_defects_detected as defects_difference
from points
inner join ours using (service, week_end)
