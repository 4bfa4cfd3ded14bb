-- Every Multitudes repository the warehouse knows, as a service identifier: the repository path,
-- its last segment (the default service name; `unknown` without a repository) and the full path
-- for two repositories whose last segments are the same.
select distinct
    'multitudes' as source,
    coalesce(repository, '') as service_key,
    coalesce(repository, '') as service_path,
    coalesce(nullif(split_part(repository, '/', -1), ''), 'unknown') as default_service,
    coalesce(nullif(repository, ''), 'unknown') as qualified_service
from {{ ref('stg_multitudes__deployments') }}
