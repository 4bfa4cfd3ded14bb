-- DORA metrics per service x environment x UTC day. A row exists for every day with a counted
-- deployment, a change shipped, a failure resolved or a failure detected that is still open.
-- Buckets: deployments and lead time by deployment time, change failure rate by the causing
-- deployment's time, recovery times by resolution time, open failures by detection time.
with deployments as (
    select * from {{ ref('int_deployments') }} where is_counted
),

failures as (
    select * from {{ ref('int_failures') }} where is_qualifying
),

changes as (
    select * from {{ ref('int_changes') }} where deployment_id is not null
),

teams as (
    {{ service_teams_relation() }}
),

failed_deployments as (
    select distinct caused_by_deployment_id as deployment_id
    from failures
    where caused_by_deployment_id is not null
),

deployment_days as (
    select
        deployments.service,
        deployments.environment,
        cast(deployments.deployed_at as date) as metric_date,
        count(*) as deployment_count,
        count(*) filter (where deployments.is_fix or deployments.is_rollback) as rework_deployment_count,
        count(failed_deployments.deployment_id) as failed_deployment_count
    from deployments
    left join failed_deployments on deployments.deployment_id = failed_deployments.deployment_id
    group by all
),

change_days as (
    select
        service,
        environment,
        cast(deployed_at as date) as metric_date,
        count(*) as changes_deployed,
        {{ duration_stats('lead_time_seconds', 'lead_time') }},
        {{ duration_stats('merge_to_deploy_seconds', 'merge_to_deploy') }},
        {{ duration_stats('open_to_deploy_seconds', 'open_to_deploy') }}
    from changes
    group by all
),

recovery_days as (
    select
        service,
        environment,
        cast(resolved_at as date) as metric_date,
        count(*) as failures_resolved,
        {{ duration_stats('recovery_time_seconds', 'recovery_time') }},
        {{ duration_stats('time_to_restore_seconds', 'time_to_restore') }}
    from failures
    where resolved_at is not null
    group by all
),

open_days as (
    select
        service,
        environment,
        cast(detected_at as date) as metric_date,
        count(*) as open_failures
    from failures
    where resolved_at is null
    group by all
),

spine as (
    select service, environment, metric_date from deployment_days
    union
    select service, environment, metric_date from change_days
    union
    select service, environment, metric_date from recovery_days
    union
    select service, environment, metric_date from open_days
)

select
    spine.service,
    coalesce(teams.team, 'unassigned') as team,
    spine.environment,
    spine.metric_date,
    coalesce(deployment_days.deployment_count, 0) as deployment_count,
    coalesce(deployment_days.rework_deployment_count, 0) as rework_deployment_count,
    coalesce(deployment_days.failed_deployment_count, 0) as failed_deployment_count,
    deployment_days.failed_deployment_count / nullif(deployment_days.deployment_count, 0)
        as change_failure_rate,
    deployment_days.rework_deployment_count / nullif(deployment_days.deployment_count, 0)
        as rework_rate,
    coalesce(change_days.changes_deployed, 0) as changes_deployed,
    {% for metric in ['lead_time', 'merge_to_deploy', 'open_to_deploy'] %}
    coalesce(change_days.{{ metric }}_n, 0) as {{ metric }}_n,
    {% for stat in ['median', 'p75', 'p90', 'mean'] %}
    change_days.{{ metric }}_{{ stat }}_seconds,
    {% endfor %}
    {% endfor %}
    coalesce(recovery_days.failures_resolved, 0) as failures_resolved,
    {% for metric in ['recovery_time', 'time_to_restore'] %}
    coalesce(recovery_days.{{ metric }}_n, 0) as {{ metric }}_n,
    {% for stat in ['median', 'p75', 'p90', 'mean'] %}
    recovery_days.{{ metric }}_{{ stat }}_seconds,
    {% endfor %}
    {% endfor %}
    coalesce(open_days.open_failures, 0) as open_failures
from spine
left join deployment_days using (service, environment, metric_date)
left join change_days using (service, environment, metric_date)
left join recovery_days using (service, environment, metric_date)
left join open_days using (service, environment, metric_date)
left join teams on spine.service = teams.service
