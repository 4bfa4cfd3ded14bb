select
    resource_path,
    segment,
    week_end,
    label,
    value
from {{ latest_rows(source('gitclear', 'report_points'), 'resource_path, segment, week_end') }} as report_points
