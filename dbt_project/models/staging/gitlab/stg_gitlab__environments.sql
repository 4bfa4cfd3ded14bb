select
    id as environment_id,
    project_id,
    name as environment_name,
    tier,
    coalesce(tier = 'production', false) as is_production
from {{ source('gitlab', 'environments') }}
qualify row_number() over (partition by id order by _dlt_load_id desc) = 1
