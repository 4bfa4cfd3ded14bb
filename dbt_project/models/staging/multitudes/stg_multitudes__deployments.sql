select
    id as deployment_id,
    {{ json_string_list('commit_shas') }} as commit_shas,
    environment_name,
    {{ utc('deployed_at') }} as deployed_at,
    title,
    {{ json_string_list('tags') }} as tags,
    is_test,
    {{ utc('created_at') }} as received_at,
    repository
from {{ source('multitudes', 'deployments') }} as deployments
