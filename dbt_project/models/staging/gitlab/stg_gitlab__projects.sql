select
    id as project_id,
    name as project_name,
    path_with_namespace as project_path
from {{ source('gitlab', 'projects') }} as projects
