select
    deployment_id,
    merge_request_id,
    iid as merge_request_iid,
    project_id,
    title,
    source_branch,
    {{ utc('created_at') }} as opened_at,
    {{ utc('merged_at') }} as merged_at,
    merge_commit_sha
from {{ source('gitlab', 'deployment_merge_requests') }} as deployment_merge_requests
