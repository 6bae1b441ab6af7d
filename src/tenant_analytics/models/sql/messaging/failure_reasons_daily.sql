{{ config(grain=['tenant_id', 'campaign_id', 'day', 'error_code']) }}
-- Failed messages of known campaigns by reason and day of sending.
SELECT
    m.tenant_id,
    m.campaign_id,
    DATE_TRUNC('day', m.sent_at) AS day,
    COALESCE(m.error_code, 'unknown') AS error_code,
    MAX(c.name) AS campaign_name,
    COUNT(*) AS failed
FROM {{ ref('message_status') }} AS m
JOIN {{ source('messaging.campaigns') }} AS c
    ON c.tenant_id = m.tenant_id AND c.campaign_id = m.campaign_id
WHERE m.failed_at IS NOT NULL AND m.sent_at IS NOT NULL
GROUP BY 1, 2, 3, 4
