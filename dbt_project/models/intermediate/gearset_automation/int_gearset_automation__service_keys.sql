-- Every Gearset CI job the warehouse knows, as a service identifier: the job id and the service
-- the configuration names for it (`job_services`; the API cannot tell). The name is the user's,
-- so two jobs of one service are one service on purpose.
select distinct
    'gearset_automation' as source,
    job_id as service_key,
    coalesce(service, job_id) as service_path,
    coalesce(service, job_id) as default_service,
    coalesce(service, job_id) as qualified_service
from {{ ref('stg_gearset_automation__ci_job_runs') }}
