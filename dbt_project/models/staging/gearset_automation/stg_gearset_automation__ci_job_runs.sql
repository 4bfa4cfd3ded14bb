select
    id as run_id,
    job_id,
    service,
    environment,
    {{ utc('start_time') }} as started_at,
    {{ utc('end_time') }} as ended_at,
    deployment_succeeded,
    job_type,
    run_outcome,
    error_message,
    head_commit_hash
from {{ source('gearset_automation', 'ci_job_runs') }} as ci_job_runs
