-- Merged GitLab merge requests, from the merge request list and from deployment links.
with listed as (
    select merge_request_id, merge_request_iid, project_id, title, opened_at, merged_at, first_commit_at, merge_sha
    from {{ ref('stg_gitlab__merge_requests') }}
    where merged_at is not null
),

linked_only as (
    select distinct on (merge_request_id)
        merge_request_id, merge_request_iid, project_id, title, opened_at, merged_at,
        cast(null as timestamp) as first_commit_at, merge_commit_sha as merge_sha
    from {{ ref('stg_gitlab__deployment_merge_requests') }}
    where merged_at is not null and merge_request_id not in (select merge_request_id from listed)
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
