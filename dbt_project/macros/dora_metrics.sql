{#- DORA metrics from the records at one grain (`day`, `week` = ISO week from Monday, `month`)
    and one level (`service_environment`, `team`, `overall`). Every level aggregates the records
    themselves, never lower-level results, so a team median is the median of its changes.
    A row exists for every bucket with a counted deployment, a change shipped, a failure resolved,
    or a failure detected that is still open. Where the scope does not track failures (see
    int_failure_tracking) the failure columns are null, never 0; where it does, the change failure
    rate's denominator is the counted deployments of the services that track failures. -#}
{% macro dora_metrics(grain, level, include_level=true, metric_date=false) -%}
{%- set dims = {
    'service_environment': ['service', 'environment'],
    'team': ['team'],
    'overall': [],
}[level] -%}
{%- set keys = dims + ['period_start'] -%}
{#- Incremental (macros/refresh_horizon.sql): the periods from the first one whose records changed
    since this mart's last build are computed again. -#}
-- depends_on: {{ ref('int_refresh_horizon') }}
{{ config(**horizon_config('metrics', 'period_start', keys, grain=grain)) }}
{%- set since = horizon_start('metrics', grain) if is_incremental() else none -%}
with deployments as (
    select * from {{ ref('int_deployments') }} where is_counted {%- if since %} and deployed_at >= {{ since }}{% endif %}
),

failures as (
    select * from {{ ref('int_failures') }} where is_qualifying
),

changes as (
    select * from {{ ref('int_changes') }} where deployment_id is not null {%- if since %} and deployed_at >= {{ since }}{% endif %}
),

failed_deployments as (
    select distinct caused_by_deployment_id as deployment_id
    from failures
    where caused_by_deployment_id is not null
),

deployment_buckets as (
    select
        {% for d in dims %}deployments.{{ d }}, {% endfor %}
        {{ period_bucket(grain, 'deployments.deployed_at') }} as period_start,
        count(*) as deployment_count,
        count(distinct cast(deployments.deployed_at as date)) as deployment_days,
        count(*) filter (where deployments.is_fix or deployments.is_rollback) as rework_deployment_count,
        count(*) filter (where deployments.tracks_failures) as failure_tracked_deployment_count,
        count(failed_deployments.deployment_id) as failed_deployment_count
    from deployments
    left join failed_deployments on deployments.deployment_id = failed_deployments.deployment_id
    {{ group_by(dims | length + 1) }}
),

change_buckets as (
    select
        {% for d in dims %}{{ d }}, {% endfor %}
        {{ period_bucket(grain, 'deployed_at') }} as period_start,
        count(*) as changes_deployed,
        {{ duration_stats(counted_duration('lead_time'), 'lead_time') }},
        {{ duration_stats(counted_duration('merge_to_deploy'), 'merge_to_deploy') }},
        {{ duration_stats(counted_duration('open_to_deploy'), 'open_to_deploy') }}
    from changes
    {{ group_by(dims | length + 1) }}
),

recovery_buckets as (
    select
        {% for d in dims %}{{ d }}, {% endfor %}
        {{ period_bucket(grain, 'resolved_at') }} as period_start,
        count(*) as failures_resolved,
        {{ duration_stats('recovery_time_seconds', 'recovery_time') }},
        {{ duration_stats('time_to_restore_seconds', 'time_to_restore') }}
    from failures
    where resolved_at is not null {%- if since %} and resolved_at >= {{ since }}{% endif %}
    {{ group_by(dims | length + 1) }}
),

open_buckets as (
    select
        {% for d in dims %}{{ d }}, {% endfor %}
        {{ period_bucket(grain, 'detected_at') }} as period_start,
        count(*) as open_failures
    from failures
    where resolved_at is null {%- if since %} and detected_at >= {{ since }}{% endif %}
    {{ group_by(dims | length + 1) }}
),

spine as (
    select {{ keys | join(', ') }} from deployment_buckets
    union
    select {{ keys | join(', ') }} from change_buckets
    union
    select {{ keys | join(', ') }} from recovery_buckets
    union
    select {{ keys | join(', ') }} from open_buckets
),

{#- Whether the scope tracks failures: its service does, or one of the team's (organisation's) do. #}
tracking as (
    select
        {% for d in dims if d != 'environment' %}{{ d }}, {% endfor %}
        bool_or(tracks_failures) as tracks_failures
    from {{ ref('int_failure_tracking') }}
    {% if level != 'overall' %}group by {{ 'service' if level == 'service_environment' else 'team' }}{% endif %}
)
{%- if level == 'service_environment' %},

teams as (
    {{ service_teams_relation() }}
)
{%- endif %}

select
    {% if include_level %}'{{ level }}' as level,{% endif %}
    {% if level == 'service_environment' %}
    spine.service,
    coalesce(teams.team, 'unassigned') as team,
    spine.environment,
    {% elif level == 'team' %}
    spine.team,
    {% endif %}
    spine.period_start,
    {%- set days = {'day': '1', 'week': '7'}.get(grain) or days_in_month('spine.period_start') %}
    {{ days }} as days_in_period,
    coalesce(deployment_buckets.deployment_count, 0) as deployment_count,
    coalesce(deployment_buckets.deployment_days, 0) as deployment_days,
    {{ divide('coalesce(deployment_buckets.deployment_count, 0)', days) }} as deployments_per_day,
    coalesce(deployment_buckets.rework_deployment_count, 0) as rework_deployment_count,
    coalesce(tracking.tracks_failures, false) as tracks_failures,
    coalesce(deployment_buckets.failure_tracked_deployment_count, 0) as failure_tracked_deployment_count,
    case when tracking.tracks_failures then coalesce(deployment_buckets.failed_deployment_count, 0) end
        as failed_deployment_count,
    case when tracking.tracks_failures then
        {{ divide('deployment_buckets.failed_deployment_count', 'nullif(deployment_buckets.failure_tracked_deployment_count, 0)') }}
    end as change_failure_rate,
    {{ divide('deployment_buckets.rework_deployment_count', 'nullif(deployment_buckets.deployment_count, 0)') }}
        as rework_rate,
    coalesce(change_buckets.changes_deployed, 0) as changes_deployed,
    {% for metric in ['lead_time', 'merge_to_deploy', 'open_to_deploy'] %}
    coalesce(change_buckets.{{ metric }}_n, 0) as {{ metric }}_n,
    {% for stat in ['median', 'p75', 'p90', 'mean'] %}
    change_buckets.{{ metric }}_{{ stat }}_seconds,
    {% endfor %}
    {% endfor %}
    case when tracking.tracks_failures then coalesce(recovery_buckets.failures_resolved, 0) end as failures_resolved,
    {% for metric in ['recovery_time', 'time_to_restore'] %}
    case when tracking.tracks_failures then coalesce(recovery_buckets.{{ metric }}_n, 0) end as {{ metric }}_n,
    {% for stat in ['median', 'p75', 'p90', 'mean'] %}
    recovery_buckets.{{ metric }}_{{ stat }}_seconds,
    {% endfor %}
    {% endfor %}
    case when tracking.tracks_failures then coalesce(open_buckets.open_failures, 0) end as open_failures
    {%- if metric_date %},
    spine.period_start as metric_date
    {%- endif %}
from spine
{%- set using = 'using (' ~ keys | join(', ') ~ ')' %}
left join deployment_buckets {{ using }}
left join change_buckets {{ using }}
left join recovery_buckets {{ using }}
left join open_buckets {{ using }}
{%- if level == 'service_environment' %}
left join teams on spine.service = teams.service
left join tracking on spine.service = tracking.service
{%- elif level == 'team' %}
left join tracking on spine.team = tracking.team
{%- else %}
cross join tracking
{%- endif %}
{%- endmacro %}


{#- The first day of the `grain` bucket (day, ISO week from Monday, month) holding `column`. -#}
{% macro period_bucket(grain, column) -%}
    cast(date_trunc('{{ grain }}', {{ column }}) as date)
{%- endmacro %}
