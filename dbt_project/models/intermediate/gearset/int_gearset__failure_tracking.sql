-- Whether Gearset records failures for each pipeline: a deployment's `ReportedBugs` is an array
-- when change failure management is on for the pipeline and `null` when it is off.
with per_pipeline as (
    select pipeline_id, bool_or(coalesce(bugs_tracked, false)) as records_failures
    from {{ ref('stg_gearset__deployments') }}
    group by pipeline_id
)

select
    {{ service_of('gearset', 'per_pipeline.pipeline_id') }} as service,
    'gearset' as source,
    bool_or(records_failures) as records_failures
from per_pipeline
group by 1
