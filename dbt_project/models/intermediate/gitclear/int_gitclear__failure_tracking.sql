-- Whether GitClear records failures for each repository: it does once its weekly
-- `defect_detected_count` series shows at least one critical defect.
with per_repo as (
    select
        resource_path,
        coalesce(sum(value) filter (where segment = 'defect_detected_count'), 0) > 0 as records_failures
    from {{ ref('stg_gitclear__report_points') }}
    group by resource_path
)

select
    {{ service_of('gitclear', 'per_repo.resource_path') }} as service,
    'gitclear' as source,
    bool_or(records_failures) as records_failures
from per_repo
group by 1
