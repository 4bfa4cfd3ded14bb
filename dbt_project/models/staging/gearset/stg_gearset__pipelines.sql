select
    id as pipeline_id,
    name as pipeline_name
from {{ latest_rows(source('gearset', 'pipelines'), 'id') }} as pipelines
