-- DORA metrics of the whole organisation per day, aggregated from the records.
{{ dora_metrics('day', 'overall') }}
