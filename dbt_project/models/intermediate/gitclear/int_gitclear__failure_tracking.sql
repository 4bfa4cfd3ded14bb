-- Whether GitClear records failures for each repository: it does once its weekly
-- `defect_detected_count` series shows at least one critical defect.
select
    split_part(resource_path, '/', -1) as service,
    'gitclear' as source,
    coalesce(sum(value) filter (where segment = 'defect_detected_count'), 0) > 0 as records_failures
from {{ ref('stg_gitclear__report_points') }}
group by 1
