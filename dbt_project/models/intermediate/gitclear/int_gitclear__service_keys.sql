-- Every GitClear repository the warehouse knows, as a service identifier: the repository path,
-- its last segment (the default service name) and the full path for two repositories whose last
-- segments are the same.
with repos as (
    select repo from {{ ref('stg_gitclear__pull_requests') }}
    union
    select resource_path from {{ ref('stg_gitclear__report_points') }}
)

select
    'gitclear' as source,
    repo as service_key,
    repo as service_path,
    split_part(repo, '/', -1) as default_service,
    repo as qualified_service
from repos
where repo is not null
