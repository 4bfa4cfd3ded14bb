-- Whether Gearset records failures for each pipeline: a deployment's `ReportedBugs` is an array
-- when change failure management is on for the pipeline and `null` when it is off.
select
    coalesce(pipelines.pipeline_name, deployments.pipeline_id) as service,
    'gearset' as source,
    bool_or(coalesce(deployments.bugs_tracked, false)) as records_failures
from {{ ref('stg_gearset__deployments') }} as deployments
left join {{ ref('stg_gearset__pipelines') }} as pipelines on deployments.pipeline_id = pipelines.pipeline_id
group by 1
