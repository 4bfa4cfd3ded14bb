select
    resource_path,
    segment,
    week_end,
    label,
    value
from {{ source('gitclear', 'report_points') }}
qualify row_number() over (partition by resource_path, segment, week_end order by _dlt_load_id desc) = 1
