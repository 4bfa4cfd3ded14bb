-- DORA metrics per service x environment x ISO week (Monday start), from the records.
{{ dora_metrics('week', 'service_environment') }}
