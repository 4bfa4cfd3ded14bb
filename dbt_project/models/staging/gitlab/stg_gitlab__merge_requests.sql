select
    id as merge_request_id,
    iid as merge_request_iid,
    project_id,
    title,
    state,
    source_branch,
    {{ utc('created_at') }} as opened_at,
    {{ utc('merged_at') }} as merged_at,
    {{ utc('first_commit_at') }} as first_commit_at,
    coalesce(squash_commit_sha, merge_commit_sha) as merge_sha
from {{ source('gitlab', 'merge_requests') }} as merge_requests
