-- Gearset feature pull requests that merged: the changes of a pipeline. Gearset reports them
-- only inside deployments, so every change here has been promoted at least once.
-- Incremental (macros/refresh_horizon.sql): a pull request's row loaded again sets the horizon at
-- or before its times. So a change is kept when its times all precede the horizon, and rebuilt
-- from all its rows when any of its rows has a time from the horizon on: a new row can only lower
-- a change's times to a time at or after the horizon.
-- depends_on: {{ ref('int_refresh_loads') }}
{{ config(**horizon_config('sources', horizon_anchor('source_changes'), 'change_id')) }}

{%- set since = horizon_start('sources') if is_incremental() else none %}

with deployments as (
    select * from {{ ref('stg_gearset__deployments') }}
),

{#- An incremental build first finds the changes with a row from the horizon on, then reads the
    rows of those changes only: joining every pull request to its deployment to find them took
    most of the model's time at a million deployments. #}
{%- if since %}
recent as (
    select distinct deployments.pipeline_id, pull_requests.pull_request_number
    from {{ ref('stg_gearset__deployment_pull_requests') }} as pull_requests
    inner join deployments on pull_requests.deployment_id = deployments.deployment_id
    where pull_requests.merged_at is not null
        and greatest(pull_requests.opened_at, pull_requests.merged_at, pull_requests.first_commit_at) >= {{ since }}
),
{%- endif %}

pull_requests as (
    select pull_requests.*, deployments.pipeline_id
    from {{ ref('stg_gearset__deployment_pull_requests') }} as pull_requests
    inner join deployments on pull_requests.deployment_id = deployments.deployment_id
    where pull_requests.merged_at is not null
    {%- if since %}
        and pull_requests.pull_request_number in (select pull_request_number from recent)
        and (deployments.pipeline_id, pull_requests.pull_request_number) in (
            select pipeline_id, pull_request_number from recent
        )
    {%- endif %}
),

per_pipeline as (
    select
        pipeline_id,
        pull_request_number,
        {{ dbt.any_value('title') }} as title,
        min(opened_at) as opened_at,
        min(merged_at) as merged_at,
        min(first_commit_at) as first_commit_at
    from pull_requests
    group by pipeline_id, pull_request_number
)

select
    'gearset:' || pipeline_id || ':' || pull_request_number as change_id,
    'gearset' as source,
    cast(pull_request_number as varchar) as source_change_id,
    {{ service_of('gearset', 'per_pipeline.pipeline_id') }} as service,
    title,
    opened_at,
    merged_at,
    first_commit_at,
    cast(null as varchar) as merge_sha
from per_pipeline
