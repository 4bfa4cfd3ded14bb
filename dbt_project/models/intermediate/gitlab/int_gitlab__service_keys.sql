-- Every GitLab project the warehouse knows, as a service identifier: the project id, its full
-- path, its name (the default service name) and its full path for two projects that share a name.
select
    'gitlab' as source,
    cast(project_id as varchar) as service_key,
    coalesce(project_path, cast(project_id as varchar)) as service_path,
    coalesce(project_name, project_path, cast(project_id as varchar)) as default_service,
    coalesce(project_path, cast(project_id as varchar)) as qualified_service
from {{ ref('stg_gitlab__projects') }}
