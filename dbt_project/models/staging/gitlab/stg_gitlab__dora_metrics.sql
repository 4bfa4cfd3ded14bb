select
    project_id,
    metric,
    cast("date" as date) as metric_date,
    value
from {{ source('gitlab', 'dora_metrics') }} as dora_metrics
