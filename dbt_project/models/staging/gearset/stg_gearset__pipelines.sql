select
    id as pipeline_id,
    name as pipeline_name
from {{ source('gearset', 'pipelines') }} as pipelines
