-- Per source: the latest extraction and its outcome, the last successful one, and how far the
-- data the warehouse keeps for it is behind (a failed source keeps its last good data).
select * from {{ ref('int_source_freshness') }}
