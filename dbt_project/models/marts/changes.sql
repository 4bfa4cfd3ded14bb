-- One row per change with its lead time and stages: coding (first commit -> opened),
-- review (opened -> merged), deploy (merged -> deployed). Lead time and its variants are the plain
-- arithmetic, negative and backlog values included, with the reason each is left out of the
-- aggregates beside it (null when it counts).
-- Incremental like int_changes (macros/refresh_horizon.sql): the rows from the horizon on.
-- depends_on: {{ ref('int_refresh_horizon') }}
{{ config(**horizon_config('loads', horizon_anchor('changes'), 'change_id')) }}
select
    change_id,
    source,
    source_change_id,
    service,
    team,
    environment,
    title,
    first_commit_at,
    opened_at,
    merged_at,
    merge_sha,
    deployment_id,
    deployed_at,
    link_method,
    is_first_deployment_backlog,
    lead_time_seconds,
    merge_to_deploy_seconds,
    open_to_deploy_seconds,
    {{ seconds_between('first_commit_at', 'opened_at') }} as coding_seconds,
    {{ seconds_between('opened_at', 'merged_at') }} as review_seconds,
    merge_to_deploy_seconds as deploy_seconds,
    lead_time_exclusion_reason,
    merge_to_deploy_exclusion_reason,
    open_to_deploy_exclusion_reason
from {{ ref('int_changes') }}
{%- if is_incremental() %}
where {{ horizon_anchor('changes') }} >= {{ horizon_start('loads') }}
{%- endif %}
