-- Gearset feature pull requests that merged: the changes of a pipeline. Gearset reports them
-- only inside deployments, so every change here has been promoted at least once.
with pull_requests as (
    select * from {{ ref('stg_gearset__deployment_pull_requests') }}
),

deployments as (
    select * from {{ ref('stg_gearset__deployments') }}
),

per_pipeline as (
    select
        deployments.pipeline_id,
        pull_requests.pull_request_number,
        {{ dbt.any_value('pull_requests.title') }} as title,
        min(pull_requests.opened_at) as opened_at,
        min(pull_requests.merged_at) as merged_at,
        min(pull_requests.first_commit_at) as first_commit_at
    from pull_requests
    inner join deployments on pull_requests.deployment_id = deployments.deployment_id
    where pull_requests.merged_at is not null
    group by deployments.pipeline_id, pull_requests.pull_request_number
)

select
    'gearset:' || pipeline_id || ':' || pull_request_number as change_id,
    'gearset' as source,
    cast(pull_request_number as varchar) as source_change_id,
    {{ service_of('gearset', 'per_pipeline.pipeline_id') }} as service,
    title,
    opened_at,
    merged_at,
    first_commit_at,
    cast(null as varchar) as merge_sha
from per_pipeline
