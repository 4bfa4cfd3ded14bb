-- Links between changes and deployments: `explicit` where a source lists the changes of a
-- deployment, `commit_range` where a deployment of the same service lists the change's merge SHA.
with explicit_links as (
    {{ union_sources('change_deployments', {'change_id': 'varchar', 'deployment_id': 'varchar', 'link_method': 'varchar'}) }}
),

commit_links as (
    select distinct
        changes.change_id,
        deployments.deployment_id,
        'commit_range' as link_method
    from {{ ref('int_changes_unioned') }} as changes
    inner join {{ ref('int_deployment_commits') }} as commits on changes.merge_sha = commits.sha
    inner join {{ ref('int_deployments_unioned') }} as deployments
        on commits.deployment_id = deployments.deployment_id and changes.service = deployments.service
)

select * from explicit_links
union all
select * from commit_links
where not exists (
    select 1 from explicit_links
    where explicit_links.change_id = commit_links.change_id
        and explicit_links.deployment_id = commit_links.deployment_id
)
