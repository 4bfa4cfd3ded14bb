-- Every deployment of every source, with team, whether it counts, and why not.
-- The same deployment reported by two tools is counted once: a deployment is a `duplicate` of
-- one from a preferred source (gearset, gitlab, gearset_automation, multitudes, in that order)
-- when service and environment match, the preferred one's revision is among its commits, and
-- they finished within `deployment_match_tolerance_seconds`. A Multitudes record replaced by a
-- later one with the same commits and environment is a `duplicate` too. The kept deployment
-- takes the fix, rollback and failure flags of its duplicates.
-- Incremental (macros/refresh_horizon.sql): the deployments from the horizon on are classified
-- again, matched against those within twice the tolerance before it.
-- depends_on: {{ ref('int_refresh_horizon') }}
{{ config(**horizon_config('loads', horizon_anchor('deployments'), 'deployment_id', buckets=['deployed_at'])) }}

{%- set since = horizon_start('loads') if is_incremental() else none %}

with unioned as (
    select
        *,
        case source
            when 'gearset' then 1 when 'gitlab' then 2 when 'gearset_automation' then 3 else 4
        end as source_rank
    from {{ ref('int_deployments_unioned') }}
    {%- if since %}
    where deployed_at is null
        or deployed_at >= {{ since }} - 2 * {{ var('deployment_match_tolerance_seconds') }} * interval '1 second'
    {%- endif %}
),

commits as (
    select * from {{ ref('int_deployment_commits') }}
),

matches as (
    select
        candidate.deployment_id,
        {{ first_by('preferred.deployment_id', ['preferred.source_rank']) }} as duplicate_of
    from unioned as candidate
    inner join commits on candidate.deployment_id = commits.deployment_id
    inner join unioned as preferred
        on preferred.source_rank < candidate.source_rank
        and preferred.service = candidate.service
        and preferred.environment = candidate.environment
        and preferred.revision = commits.sha
        and abs({{ epoch_seconds('preferred.deployed_at') }} - {{ epoch_seconds('candidate.deployed_at') }})
            <= {{ var('deployment_match_tolerance_seconds') }}
    where not candidate.is_test
    group by candidate.deployment_id
),

{% if 'multitudes' in var('dora_sources') %}
superseded as (
    select deployment_id from {{ ref('int_multitudes__deployments') }} where is_superseded
),
{% else %}
superseded as (
    select cast(null as varchar) as deployment_id where false
),
{% endif %}

inherited as (
    select
        matches.duplicate_of as deployment_id,
        bool_or(unioned.is_fix) as is_fix,
        bool_or(unioned.is_rollback) as is_rollback,
        bool_or(unioned.is_failure_reported) as is_failure_reported
    from matches
    inner join unioned on matches.deployment_id = unioned.deployment_id
    group by matches.duplicate_of
),

teams as (
    {{ service_teams_relation() }}
),

tracking as (
    select service, tracks_failures from {{ ref('int_failure_tracking') }}
),

classified as (
    select
        unioned.deployment_id,
        unioned.source,
        unioned.source_deployment_id,
        unioned.service,
        unioned.environment,
        unioned.is_production,
        unioned.status,
        unioned.deployed_at,
        unioned.revision,
        unioned.is_test,
        unioned.is_empty,
        unioned.is_superseded,
        unioned.is_fix or coalesce(inherited.is_fix, false) as is_fix,
        unioned.is_rollback or coalesce(inherited.is_rollback, false) as is_rollback,
        unioned.is_failure_reported or coalesce(inherited.is_failure_reported, false) as is_failure_reported,
        matches.duplicate_of,
        coalesce(teams.team, 'unassigned') as team,
        coalesce(tracking.tracks_failures, false) as tracks_failures,
        case
            when unioned.is_test then 'test_deployment'
            when matches.duplicate_of is not null
                or unioned.deployment_id in (select deployment_id from superseded) then 'duplicate'
            when unioned.is_empty then 'empty_deployment'
            when not unioned.is_production then 'not_production'
            when unioned.status not in ('succeeded', 'partially_succeeded') then 'failed_status'
        end as exclusion_reason
    from unioned
    left join matches on unioned.deployment_id = matches.deployment_id
    left join inherited on unioned.deployment_id = inherited.deployment_id
    left join teams on unioned.service = teams.service
    left join tracking on unioned.service = tracking.service
),

{#- A group per service and environment, not a window: a window sorts every deployment with all
    its columns. -#}
first_counted as (
    select {{ first_by('deployment_id', ['deployed_at', 'deployment_id']) }} as deployment_id
    from classified
    where exclusion_reason is null
    {%- if since %}
        and deployed_at >= {{ since }}
        {#- An environment with a counted deployment before the horizon has its first there. #}
        and not exists (
            select 1 from {{ this }} as kept
            where kept.is_counted and kept.deployed_at < {{ since }}
                and kept.service is not distinct from classified.service
                and kept.environment is not distinct from classified.environment
        )
    {%- endif %}
    group by service, environment
)

select
    *,
    exclusion_reason is null as is_counted,
    exclusion_reason is null
        and deployment_id in (select deployment_id from first_counted) as is_first_counted_in_environment
from classified
{%- if since %}
where {{ horizon_anchor('deployments') }} >= {{ since }}
{%- endif %}
