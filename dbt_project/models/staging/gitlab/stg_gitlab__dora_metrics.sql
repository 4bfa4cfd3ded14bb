select
    project_id,
    metric,
    cast("date" as date) as metric_date,
    value
from {{ latest_rows(source('gitlab', 'dora_metrics'), 'project_id, metric, "date"') }} as dora_metrics
