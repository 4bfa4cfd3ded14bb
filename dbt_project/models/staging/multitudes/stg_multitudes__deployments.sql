select
    id as deployment_id,
    cast(from_json(commit_shas, '["VARCHAR"]') as varchar[]) as commit_shas,
    environment_name,
    {{ utc('deployed_at') }} as deployed_at,
    title,
    cast(from_json(tags, '["VARCHAR"]') as varchar[]) as tags,
    is_test,
    {{ utc('created_at') }} as received_at,
    repository
from {{ source('multitudes', 'deployments') }}
qualify row_number() over (partition by id order by _dlt_load_id desc) = 1
