-- Each (feature pull request, deployment) pair Gearset lists: the explicit link between a
-- change and every deployment that promoted it. A pair is unique without `distinct` (which sorted
-- 2.9M rows at the target scale): staging tests (deployment, pull request) unique, and a
-- deployment belongs to one pipeline.
with pull_requests as (
    select * from {{ ref('stg_gearset__deployment_pull_requests') }}
),

deployments as (
    select * from {{ ref('stg_gearset__deployments') }}
)

select
    'gearset:' || deployments.pipeline_id || ':' || pull_requests.pull_request_number as change_id,
    'gearset:' || pull_requests.deployment_id as deployment_id,
    'explicit' as link_method
from pull_requests
inner join deployments on pull_requests.deployment_id = deployments.deployment_id
where pull_requests.merged_at is not null
