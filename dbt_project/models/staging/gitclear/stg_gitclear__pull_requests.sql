select
    repo,
    number as pull_request_number,
    title,
    state,
    head_branch,
    {{ utc('created_at') }} as opened_at,
    {{ utc('merged_at') }} as merged_at,
    {{ utc('first_commit_at') }} as first_commit_at,
    merge_sha
from {{ source('gitclear', 'pull_requests') }} as pull_requests
