-- Performance level of every service, team and the whole organisation over the trailing window
-- of int_performance_measures, classified against the bands of the DORA report of var
-- `benchmark_year` (seed dora_benchmarks). Rule for DORA's overlapping and non-contiguous bands:
-- among the bands that contain the value, the best level; when none does, the band nearest to the
-- value (on a log scale for frequencies and durations, by absolute difference for the change
-- failure rate), the worse level on a tie. A scope that does not track failures is `not_tracked` on
-- the change failure rate and recovery time: it never rates Elite on what it cannot measure.
with measured as (
    select * from {{ ref('int_performance_measures') }}
),

bands as (
    select * from {{ ref('dora_benchmarks') }} where report_year = {{ var('benchmark_year') }}
),

scored as (
    select
        measured.scope_level, measured.scope, measured.metric, measured.value,
        bands.level,
        bands.level_rank,
        bands.published,
        measured.value between bands.lower_bound and coalesce(bands.upper_bound, cast('infinity' as double precision))
            as contains,
        case
            when measured.value between bands.lower_bound and coalesce(bands.upper_bound, cast('infinity' as double precision))
                then 0
            when measured.metric = 'change_failure_rate'
                then least(abs(measured.value - bands.lower_bound),
                           abs(measured.value - coalesce(bands.upper_bound, bands.lower_bound)))
            else least(
                abs(ln(greatest(measured.value, 1e-9) / greatest(bands.lower_bound, 1e-9))),
                abs(ln(greatest(measured.value, 1e-9) / greatest(coalesce(bands.upper_bound, bands.lower_bound), 1e-9)))
            )
        end as distance
    from measured
    inner join bands on measured.metric = bands.metric
    where measured.value is not null
),

chosen as (
    select scope_level, scope, metric,
        {{ first_by('level', ['distance', 'case when contains then level_rank else -level_rank end']) }} as level,
        {{ first_by('published', ['distance', 'case when contains then level_rank else -level_rank end']) }} as band,
        bool_or(contains) as within_band
    from scored
    {{ group_by(3) }}
)

select
    measured.scope_level,
    measured.scope,
    measured.metric,
    measured.value,
    case
        when measured.metric in ('change_failure_rate', 'recovery_time') and not measured.tracks_failures
            then 'not_tracked'
        else chosen.level
    end as level,
    chosen.band,
    chosen.within_band,
    measured.sample_size,
    measured.previous_value,
    measured.previous_sample_size,
    {{ var('benchmark_year') }} as benchmark_year,
    measured.window_start,
    measured.window_end
from measured
left join chosen using (scope_level, scope, metric)
