-- Every production failure, linked to the deployment that caused it: as the source recorded it
-- (`explicit`), else the latest counted deployment of the service at or before detection within
-- `failure_window_days` (`window`), else `none`. Recovery durations are computed here. A failure
-- qualifies for the metrics when its service tracks failures and its severity passes the threshold.
-- Incremental (macros/refresh_horizon.sql): failures are few, so every one is linked again and the
-- ones at or after the horizon (the open ones always) replace their rows; the comparison of old
-- and new rows tells the marts which periods changed.
-- depends_on: {{ ref('int_refresh_horizon') }}
{{ config(**horizon_config(
    'loads', horizon_anchor('failures'), 'failure_id', buckets=['resolved_at', 'detected_at', 'caused_by_deployed_at'])) }}

with unioned as (
    select * from {{ ref('int_failures_unioned') }}
),

deployments as (
    select * from {{ ref('int_deployments') }}
),

teams as (
    {{ service_teams_relation() }}
),

tracking as (
    select service, tracks_failures from {{ ref('int_failure_tracking') }}
),

windowed as (
    select
        unioned.failure_id,
        {{ last_by('deployments.deployment_id', ['deployments.deployed_at', 'deployments.deployment_id']) }}
            as deployment_id
    from unioned
    inner join deployments
        on deployments.is_counted
        and deployments.service = unioned.source_service
        and deployments.deployed_at <= unioned.detected_at
        and deployments.deployed_at
            >= unioned.detected_at - {{ var('failure_window_days') }} * interval '1 day'
    where unioned.caused_by_deployment_id is null
    group by unioned.failure_id
),

linked as (
    select
        unioned.failure_id,
        unioned.source,
        unioned.source_failure_id,
        unioned.title,
        unioned.severity,
        unioned.detected_at,
        unioned.resolved_at,
        coalesce(unioned.caused_by_deployment_id, windowed.deployment_id) as caused_by_deployment_id,
        case
            when unioned.caused_by_deployment_id is not null then 'explicit'
            when windowed.deployment_id is not null then 'window'
            else 'none'
        end as link_method,
        unioned.fixed_by_deployment_id,
        unioned.source_service
    from unioned
    left join windowed on unioned.failure_id = windowed.failure_id
)

select * from (
select
    linked.failure_id,
    linked.source,
    linked.source_failure_id,
    linked.title,
    linked.severity,
    linked.detected_at,
    linked.resolved_at,
    linked.fixed_by_deployment_id,
    linked.caused_by_deployment_id,
    linked.link_method,
    coalesce(cause.service, linked.source_service) as service,
    coalesce(cause.team, teams.team, 'unassigned') as team,
    coalesce(cause.environment, 'unattributed') as environment,
    cause.deployed_at as caused_by_deployed_at,
    coalesce(cause.is_counted, false) as caused_by_counted_deployment,
    coalesce(tracking.tracks_failures, false) as tracks_failures,
    {% set threshold = var('failure_severity_threshold') %}
    coalesce(tracking.tracks_failures, false)
    {%- if threshold is not none %} and coalesce(linked.severity <= {{ threshold }}, true){% endif %}
        as is_qualifying,
    {{ seconds_between('cause.deployed_at', 'linked.resolved_at') }} as recovery_time_seconds,
    {{ seconds_between('linked.detected_at', 'linked.resolved_at') }} as time_to_restore_seconds
from linked
left join deployments as cause on linked.caused_by_deployment_id = cause.deployment_id
left join teams on linked.source_service = teams.service
left join tracking on coalesce(cause.service, linked.source_service) = tracking.service
) as failures
{%- if is_incremental() %}
where {{ horizon_anchor('failures') }} >= {{ horizon_start('loads') }}
{%- endif %}
