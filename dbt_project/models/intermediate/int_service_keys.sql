-- The service every tool identifier belongs to (the definitions' "Services and teams"). The
-- service catalog (var `service_identifiers`, from `[dora.services.<name>]`) names it where it
-- lists the identifier (its key or its full path); otherwise the tool's default name, except that
-- two identifiers of one tool sharing a default name are never merged: each is qualified by its
-- full path (`naming = 'qualified'`) and reported in the `services` mart.
with keys as (
    {{ union_sources('service_keys', {
        'source': 'varchar', 'service_key': 'varchar', 'service_path': 'varchar',
        'default_service': 'varchar', 'qualified_service': 'varchar'}) }}
),

catalog as (
    {{ service_identifiers_relation() }}
),

matched as (
    select
        keys.source,
        keys.service_key,
        {{ dbt.any_value('keys.service_path') }} as service_path,
        {{ dbt.any_value('keys.default_service') }} as default_service,
        {{ dbt.any_value('keys.qualified_service') }} as qualified_service,
        min(catalog.service) as catalog_service
    from keys
    left join catalog
        on keys.source = catalog.source and catalog.identifier in (keys.service_key, keys.service_path)
    group by keys.source, keys.service_key
),

collisions as (
    -- CI jobs are named by the user (`job_services`): jobs sharing a name are one service on purpose.
    select source, default_service
    from matched
    where catalog_service is null and source <> 'gearset_automation'
    group by source, default_service
    having count(*) > 1
)

select
    matched.source,
    matched.service_key,
    matched.service_path,
    matched.default_service,
    case
        when matched.catalog_service is not null then matched.catalog_service
        when collisions.default_service is not null then matched.qualified_service
        else matched.default_service
    end as service,
    case
        when matched.catalog_service is not null then 'catalog'
        when collisions.default_service is not null then 'qualified'
        else 'default'
    end as naming
from matched
left join collisions
    on matched.source = collisions.source and matched.default_service = collisions.default_service
