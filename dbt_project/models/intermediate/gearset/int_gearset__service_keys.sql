-- Every Gearset pipeline the warehouse knows, as a service identifier: the pipeline id, its name
-- (the default service name) and, for two pipelines that share a name, the name with the id.
with pipelines as (
    select pipeline_id, pipeline_name from {{ ref('stg_gearset__pipelines') }}
    union
    select distinct pipeline_id, cast(null as varchar) from {{ ref('stg_gearset__deployments') }}
    where pipeline_id not in (select pipeline_id from {{ ref('stg_gearset__pipelines') }})
)

select
    'gearset' as source,
    pipeline_id as service_key,
    coalesce(pipeline_name, pipeline_id) as service_path,
    coalesce(pipeline_name, pipeline_id) as default_service,
    coalesce(pipeline_name, pipeline_id) || ' (' || pipeline_id || ')' as qualified_service
from pipelines
