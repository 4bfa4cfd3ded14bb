select
    id as project_id,
    name as project_name,
    path_with_namespace as project_path
from {{ source('gitlab', 'projects') }}
qualify row_number() over (partition by id order by _dlt_load_id desc) = 1
