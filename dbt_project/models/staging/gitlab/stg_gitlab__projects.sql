select
    id as project_id,
    name as project_name,
    path_with_namespace as project_path
from {{ latest_rows(source('gitlab', 'projects'), 'id') }} as projects
