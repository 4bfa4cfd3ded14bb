-- Gearset's dashboard way beside our primary definitions, per pipeline (service) and day of the
-- production deployments. Gearset's way (its reporting samples): every successful or partially
-- successful, non-empty production deployment counts; lead time is the flat mean over the
-- deployment's feature pull requests of Date - FirstCommitDate, falling back to CreatedAt, with
-- no backlog exclusion; a failure is a reported bug of severity 1 or 2; restore time is a
-- two-level mean: per deployment the mean of ResolvedAt - Date over its resolved bugs, then the
-- mean over deployments. Ours: dora_metrics_daily (median and mean lead time from first commit,
-- backlog excluded; every severity unless `failure_severity_threshold`; recovery bucketed by
-- resolution day).
-- Incremental (macros/refresh_horizon.sql): every record of a day that ends before the horizon is
-- what the last build saw, so the days from the horizon's on are computed again.
-- depends_on: {{ ref('int_refresh_horizon') }}
{%- set day_end = "cast(metric_date as timestamp) + interval '1 day'" %}
{{ config(**horizon_config('loads', day_end, ['service', 'environment', 'metric_date'])) }}

{%- set since = horizon_start('loads') if is_incremental() else none %}

with deployments as (
    select * from {{ ref('int_deployments') }}
    where source = 'gearset' and is_counted
    {%- if since %}
        and cast(cast(deployed_at as date) as timestamp) + interval '1 day' >= {{ since }}
    {%- endif %}
),

pull_requests as (
    select
        'gearset:' || deployment_id as deployment_id,
        coalesce(first_commit_at, opened_at) as started_at
    from {{ ref('stg_gearset__deployment_pull_requests') }}
    where merged_at is not null
),

bugs as (
    select 'gearset:' || deployment_id as deployment_id, severity, resolved_at
    from {{ ref('stg_gearset__reported_bugs') }}
),

per_deployment as (
    select
        deployments.deployment_id,
        deployments.service,
        deployments.environment,
        cast(deployments.deployed_at as date) as metric_date,
        bool_or(bugs.severity <= 2) as has_severe_bug,
        avg({{ epoch_seconds('bugs.resolved_at') }} - {{ epoch_seconds('deployments.deployed_at') }}) as mean_restore_time
    from deployments
    left join bugs on deployments.deployment_id = bugs.deployment_id
    {{ group_by(4) }}
),

lead_times as (
    select
        deployments.service,
        deployments.environment,
        cast(deployments.deployed_at as date) as metric_date,
        avg({{ epoch_seconds('deployments.deployed_at') }} - {{ epoch_seconds('pull_requests.started_at') }}) as lead_time_mean_seconds
    from deployments
    inner join pull_requests on deployments.deployment_id = pull_requests.deployment_id
    {{ group_by(3) }}
),

gearset_way as (
    select
        per_deployment.service,
        per_deployment.environment,
        per_deployment.metric_date,
        count(*) as deployments,
        {{ dbt.any_value('lead_times.lead_time_mean_seconds') }} as lead_time_mean_seconds,
        {{ divide('count(*) filter (where per_deployment.has_severe_bug)', 'count(*)') }} as change_failure_rate,
        avg(per_deployment.mean_restore_time) as restore_time_mean_seconds
    from per_deployment
    left join lead_times using (service, environment, metric_date)
    {{ group_by(3) }}
),

ours as (
    select * from {{ ref('dora_metrics_daily') }}
    {%- if since %}
    where {{ day_end }} >= {{ since }}
    {%- endif %}
)

select
    gearset_way.service,
    gearset_way.environment,
    gearset_way.metric_date,
    gearset_way.deployments as gearset_deployments,
    ours.deployment_count as our_deployments,
    gearset_way.lead_time_mean_seconds as gearset_lead_time_mean_seconds,
    ours.lead_time_mean_seconds as our_lead_time_mean_seconds,
    ours.lead_time_median_seconds as our_lead_time_median_seconds,
    gearset_way.change_failure_rate as gearset_change_failure_rate,
    ours.change_failure_rate as our_change_failure_rate,
    gearset_way.restore_time_mean_seconds as gearset_restore_time_mean_seconds,
    ours.recovery_time_mean_seconds as our_recovery_time_mean_seconds
from gearset_way
left join ours
    on gearset_way.service = ours.service
    and gearset_way.environment = ours.environment
    and gearset_way.metric_date = ours.metric_date
