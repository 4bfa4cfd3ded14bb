-- Every record a source sent that could not be loaded as it was: which source and resource, its
-- key, the field and the problem, the payload (credentials removed), and the service it belongs
-- to where the tool identifier it came with is known. Counted as `rejected_record` in data_quality.
select
    rejected.source,
    rejected.resource,
    case
        when rejected.resource in ('deployments', 'ci_job_runs') then 'deployment'
        when rejected.resource in ('merge_requests', 'deployment_merge_requests', 'pull_requests',
            'deployment_pull_requests') then 'change'
        when rejected.resource in ('incidents', 'reported_bugs') then 'failure'
        else rejected.resource
    end as entity,
    coalesce(service_keys.service, 'unknown') as service,
    rejected.record_key,
    rejected.field,
    rejected.problem,
    rejected.payload,
    rejected.seen_at
from {{ ref('stg_dora_ops__rejected_records') }} as rejected
left join {{ ref('int_service_keys') }} as service_keys
    on rejected.source = service_keys.source and rejected.service_key = service_keys.service_key
