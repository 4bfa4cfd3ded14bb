select
    id as deployment_id,
    project_id,
    environment_id,
    environment_name,
    case status
        when 'success' then 'succeeded'
        when 'failed' then 'failed'
        when 'canceled' then 'cancelled'
        else 'running'
    end as status,
    sha,
    {{ utc('created_at') }} as created_at,
    {{ utc('updated_at') }} as updated_at,
    {{ utc('finished_at') }} as finished_at,
    -- A deployment's time: its job's finish, or its last change while it has none (running).
    coalesce({{ utc('finished_at') }}, {{ utc('updated_at') }}) as deployed_at
from {{ source('gitlab', 'deployments') }} as deployments
