-- The five DORA measures of every service, team and the whole organisation over a trailing
-- window (var `performance_window_days`, default 90, ending on the day of the latest counted
-- deployment), from the records: deployments per day, median lead time, change failure rate,
-- median failed deployment recovery time (time to restore for the 2021 bands) and the rework
-- rate (fixes and rollbacks among counted deployments; DORA publishes no bands for it). The two failure
-- measures are null for a scope none of whose services tracks failures, and the change failure
-- rate divides by the counted deployments of the services that do. Each measure also carries its
-- sample size and the same measure over the window before (for the report's change arrows).
{% set window_days = var('performance_window_days') %}
{% set recovery_column = 'failures.time_to_restore_seconds' if var('benchmark_year') == 2021
    else 'failures.recovery_time_seconds' %}
with deployments as (
    select * from {{ ref('int_deployments') }} where is_counted
),

window_end as (
    select cast(max(deployed_at) as date) + 1 as ends from deployments
),

bounds as (
    select 'current' as period, ends - {{ window_days }} as starts, ends from window_end
    union all
    select 'previous', ends - 2 * {{ window_days }}, ends - {{ window_days }} from window_end
),

scopes as (
    select 'service' as scope_level, service as scope, service, team from (
        select distinct service, team from deployments
    ) as services
    union all
    select distinct 'team', team, service, team from deployments
    union all
    select distinct 'overall', 'all', service, team from deployments
),

scope_tracking as (
    select scopes.scope_level, scopes.scope, coalesce(bool_or(tracking.tracks_failures), false) as tracks_failures
    from scopes
    left join {{ ref('int_failure_tracking') }} as tracking on scopes.service = tracking.service
    {{ group_by(2) }}
),

deployment_stats as (
    select
        scopes.scope_level, scopes.scope, bounds.period,
        {{ divide('count(deployments.deployment_id)', window_days) }} as deployment_frequency,
        count(deployments.deployment_id) as deployments_n,
        {{ divide(
            'count(deployments.deployment_id) filter (where deployments.is_fix or deployments.is_rollback)',
            'nullif(count(deployments.deployment_id), 0)'
        ) }} as rework_rate,
        {{ divide(
            'count(failed.deployment_id)',
            'nullif(count(deployments.deployment_id) filter (where deployments.tracks_failures), 0)'
        ) }} as change_failure_rate,
        count(deployments.deployment_id) filter (where deployments.tracks_failures) as tracked_deployments_n
    from scopes
    cross join bounds
    left join deployments
        on deployments.service = scopes.service
        and deployments.deployed_at >= bounds.starts and deployments.deployed_at < bounds.ends
    left join (
        select distinct caused_by_deployment_id as deployment_id
        from {{ ref('int_failures') }} where is_qualifying
    ) as failed on deployments.deployment_id = failed.deployment_id
    {{ group_by(3) }}
),

lead_stats as (
    select
        scopes.scope_level, scopes.scope, bounds.period,
        {{ percentile(counted_duration('changes.lead_time'), 0.5) }} as lead_time,
        count({{ counted_duration('changes.lead_time') }}) as lead_time_n
    from scopes
    cross join bounds
    inner join {{ ref('int_changes') }} as changes
        on changes.service = scopes.service
        and changes.deployed_at >= bounds.starts and changes.deployed_at < bounds.ends
    {{ group_by(3) }}
),

recovery_stats as (
    select
        scopes.scope_level, scopes.scope, bounds.period,
        {{ percentile(recovery_column, 0.5) }} as recovery_time,
        count({{ recovery_column }}) as recovery_time_n
    from scopes
    cross join bounds
    inner join {{ ref('int_failures') }} as failures
        on failures.service = scopes.service and failures.is_qualifying
        and failures.resolved_at >= bounds.starts and failures.resolved_at < bounds.ends
    {{ group_by(3) }}
),

measured as (
    select
        deployment_stats.scope_level, deployment_stats.scope, deployment_stats.period, metric, value, sample_size,
        scope_tracking.tracks_failures
    from deployment_stats
    inner join scope_tracking using (scope_level, scope)
    left join lead_stats using (scope_level, scope, period)
    left join recovery_stats using (scope_level, scope, period)
    cross join lateral (
        values
            ('deployment_frequency', deployment_stats.deployment_frequency, deployment_stats.deployments_n),
            ('lead_time', lead_stats.lead_time, coalesce(lead_stats.lead_time_n, 0)),
            ('rework_rate', deployment_stats.rework_rate, deployment_stats.deployments_n),
            (
                'change_failure_rate',
                case when scope_tracking.tracks_failures then deployment_stats.change_failure_rate end,
                case when scope_tracking.tracks_failures then deployment_stats.tracked_deployments_n end
            ),
            (
                'recovery_time',
                case when scope_tracking.tracks_failures then recovery_stats.recovery_time end,
                case when scope_tracking.tracks_failures then coalesce(recovery_stats.recovery_time_n, 0) end
            )
    ) as metrics(metric, value, sample_size)
)

select
    current.scope_level, current.scope, current.metric, current.value, current.sample_size,
    previous.value as previous_value, previous.sample_size as previous_sample_size,
    current.tracks_failures,
    bounds.starts as window_start, bounds.ends - 1 as window_end
from measured as current
inner join bounds on bounds.period = 'current'
left join measured as previous
    on previous.period = 'previous'
    and previous.scope_level = current.scope_level
    and previous.scope = current.scope
    and previous.metric = current.metric
where current.period = 'current'
