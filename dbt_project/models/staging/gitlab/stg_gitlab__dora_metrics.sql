select
    project_id,
    metric,
    cast("date" as date) as metric_date,
    value
from {{ source('gitlab', 'dora_metrics') }}
qualify row_number() over (partition by project_id, metric, "date" order by _dlt_load_id desc) = 1
