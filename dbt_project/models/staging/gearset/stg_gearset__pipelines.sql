select
    id as pipeline_id,
    name as pipeline_name
from {{ source('gearset', 'pipelines') }}
qualify row_number() over (partition by id order by _dlt_load_id desc) = 1
