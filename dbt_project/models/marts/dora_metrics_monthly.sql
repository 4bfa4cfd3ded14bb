-- DORA metrics per service x environment x calendar month, from the records.
{{ dora_metrics('month', 'service_environment') }}
