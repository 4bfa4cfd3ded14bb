select
    resource_path,
    segment,
    week_end,
    label,
    value
from {{ source('gitclear', 'report_points') }} as report_points
