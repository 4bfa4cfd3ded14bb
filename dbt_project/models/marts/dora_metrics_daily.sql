-- DORA metrics per service x environment x UTC day (see macros/dora_metrics.sql). Deployments,
-- change failure rate, rework and lead time are bucketed by deployment time; recovery times by
-- resolution time; open failures by detection time.
{{ dora_metrics('day', 'service_environment', include_level=false, metric_date=true) }}
