-- Merged GitClear pull requests. GitClear does not say where they were deployed: they link to
-- deployments of the same service that list their merge SHA (`commit_range`, int_change_deployments).
select
    'gitclear:' || repo || ':' || pull_request_number as change_id,
    'gitclear' as source,
    cast(pull_request_number as varchar) as source_change_id,
    {{ service_of('gitclear', 'repo') }} as service,
    title,
    opened_at,
    merged_at,
    first_commit_at,
    merge_sha
from {{ ref('stg_gitclear__pull_requests') }}
where merged_at is not null
