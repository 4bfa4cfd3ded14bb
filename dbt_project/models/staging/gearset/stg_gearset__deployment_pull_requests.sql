select
    deployment_id,
    number as pull_request_number,
    promotion_number,
    title,
    feature_name,
    author_username,
    url,
    {{ utc('created_at') }} as opened_at,
    {{ utc('merged_at') }} as merged_at,
    {{ utc('first_commit_date') }} as first_commit_at
from {{ source('gearset', 'deployment_pull_requests') }} as deployment_pull_requests
