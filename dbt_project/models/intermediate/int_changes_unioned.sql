-- Every enabled source's changes (merged pull/merge requests), one union.
-- A view: its readers select the rows of the horizon, and the filter reaches each source's table.
{{ config(materialized='view') }}
{{ union_sources('changes', {
    'change_id': 'varchar', 'source': 'varchar', 'source_change_id': 'varchar', 'service': 'varchar',
    'title': 'varchar', 'opened_at': 'timestamp', 'merged_at': 'timestamp', 'first_commit_at': 'timestamp',
    'merge_sha': 'varchar'}) }}
