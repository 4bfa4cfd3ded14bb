-- One row per change (merged pull/merge request), linked to the first counted deployment that
-- shipped it. Every duration is the plain arithmetic (negative and backlog values included), with
-- the reason it is left out of the aggregates beside it (null when it counts): an analyst can
-- always see and recompute what was excluded. Aggregates read `counted_duration(...)`.
-- Incremental (macros/refresh_horizon.sql): a change whose times and shipping deployment all
-- precede the horizon is kept; the others (the undeployed ones always) are linked again.
-- depends_on: {{ ref('int_refresh_horizon') }}
{{ config(**horizon_config('loads', horizon_anchor('changes'), 'change_id', buckets=['deployed_at'])) }}

{%- set since = horizon_start('loads') if is_incremental() else none %}

with changes as (
    select * from {{ ref('int_changes_unioned') }} as unioned
    {%- if since %}
    where not exists (
        select 1 from {{ this }} as kept
        where kept.change_id = unioned.change_id and {{ horizon_anchor('changes') }} < {{ since }}
    )
    {%- endif %}
),

links as (
    select * from {{ ref('int_change_deployments') }}
    {%- if since %}
    where change_id in (select change_id from changes)
    {%- endif %}
),

deployments as (
    select * from {{ ref('int_deployments') }}
),

teams as (
    {{ service_teams_relation() }}
),

first_shipped as (
    select
        links.change_id,
        {{ first_by('deployments.deployment_id', ['deployments.deployed_at', 'links.link_method', 'deployments.deployment_id']) }}
            as deployment_id
    from links
    inner join deployments
        on links.deployment_id = deployments.deployment_id and deployments.is_counted
    group by links.change_id
),

{#- A change has one link per deployment (tested), so the link's method is looked up, not picked a
    second time: a second pick over every link doubled the model's time. -#}
shipped as (
    select first_shipped.change_id, first_shipped.deployment_id, links.link_method
    from first_shipped
    inner join links
        on first_shipped.change_id = links.change_id and first_shipped.deployment_id = links.deployment_id
),

linked as (
    select
        changes.*,
        coalesce(teams.team, 'unassigned') as team,
        deployments.environment,
        shipped.deployment_id,
        deployments.deployed_at,
        coalesce(shipped.link_method, 'none') as link_method,
        coalesce(deployments.is_first_counted_in_environment, false) as is_first_deployment_backlog
    from changes
    left join shipped on changes.change_id = shipped.change_id
    left join deployments on shipped.deployment_id = deployments.deployment_id
    left join teams on changes.service = teams.service
),

timed as (
    select
        *,
        {{ epoch_seconds('deployed_at') }} - {{ epoch_seconds('first_commit_at') }} as lead_time_seconds,
        {{ epoch_seconds('deployed_at') }} - {{ epoch_seconds('merged_at') }} as merge_to_deploy_seconds,
        {{ epoch_seconds('deployed_at') }} - {{ epoch_seconds('opened_at') }} as open_to_deploy_seconds
    from linked
)

select
    *,
    {{ duration_exclusion('lead_time_seconds', 'change_without_first_commit') }} as lead_time_exclusion_reason,
    {{ duration_exclusion('merge_to_deploy_seconds', 'change_without_start_time') }}
        as merge_to_deploy_exclusion_reason,
    {{ duration_exclusion('open_to_deploy_seconds', 'change_without_start_time') }}
        as open_to_deploy_exclusion_reason
from timed
