-- Merged GitLab merge requests, from the merge request list and from deployment links.
-- Incremental (macros/refresh_horizon.sql): a merge request listed or linked again sets the horizon
-- at or before its times, so those from the horizon on are read again; one listed after it was
-- only linked replaces its linked version by key.
-- depends_on: {{ ref('int_refresh_loads') }}
{{ config(**horizon_config('sources', horizon_anchor('source_changes'), 'change_id')) }}

{%- set since = horizon_start('sources') if is_incremental() else none %}

with all_listed as (
    select merge_request_id, merge_request_iid, project_id, title, opened_at, merged_at, first_commit_at, merge_sha
    from {{ ref('stg_gitlab__merge_requests') }}
    where merged_at is not null
),

listed as (
    select * from all_listed
    {%- if since %}
    where greatest(first_commit_at, opened_at, merged_at) >= {{ since }}
    {%- endif %}
),

linked_only as (
    select distinct on (merge_request_id)
        merge_request_id, merge_request_iid, project_id, title, opened_at, merged_at,
        cast(null as timestamp) as first_commit_at, merge_commit_sha as merge_sha
    from {{ ref('stg_gitlab__deployment_merge_requests') }}
    where merged_at is not null and merge_request_id not in (select merge_request_id from all_listed)
    {%- if since %}
        and greatest(opened_at, merged_at) >= {{ since }}
    {%- endif %}
),

merge_requests as (
    select * from listed
    union all
    select * from linked_only
)

select
    'gitlab:' || merge_requests.project_id || ':' || merge_requests.merge_request_iid as change_id,
    'gitlab' as source,
    cast(merge_requests.merge_request_iid as varchar) as source_change_id,
    {{ service_of('gitlab', 'cast(merge_requests.project_id as varchar)') }} as service,
    merge_requests.title,
    merge_requests.opened_at,
    merge_requests.merged_at,
    merge_requests.first_commit_at,
    merge_requests.merge_sha
from merge_requests
