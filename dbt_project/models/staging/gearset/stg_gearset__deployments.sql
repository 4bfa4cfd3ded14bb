select
    id as deployment_id,
    pipeline_id,
    environment_id,
    {{ utc('date') }} as deployed_at,
    case status
        when 'Successful' then 'succeeded'
        when 'PartiallySuccessful' then 'partially_succeeded'
        when 'Failed' then 'failed'
        else lower(status)
    end as status,
    metadata_items_count,
    vlocity_items_count,
    config_data_items_count,
    coalesce(metadata_items_count, 0) + coalesce(vlocity_items_count, 0)
        + coalesce(config_data_items_count, 0) = 0 as is_empty,
    target_org,
    bugs_tracked
from {{ source('gearset', 'deployments') }} as deployments
