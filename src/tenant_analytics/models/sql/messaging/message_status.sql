{{ config(grain=['tenant_id', 'message_id']) }}
-- One row per message from its sent event and receipts; a receipt may land before the sent event.
SELECT
    e.tenant_id,
    e.message_id,
    MAX(CASE WHEN e.event_type = 'sent' THEN e.event_at END) AS sent_at,
    MAX(CASE WHEN e.event_type = 'delivered' THEN e.event_at END) AS delivered_at,
    MAX(CASE WHEN e.event_type = 'read' THEN e.event_at END) AS read_at,
    MAX(CASE WHEN e.event_type = 'failed' THEN e.event_at END) AS failed_at,
    MAX(e.campaign_id) AS campaign_id,
    MAX(e.template_id) AS template_id,
    MAX(e.channel) AS channel,
    MAX(e.error_code) AS error_code,
    -- from the stored timestamps (event_at is never NULL), so that a change updates the status in place
    CASE
        WHEN MAX(CASE WHEN e.event_type = 'failed' THEN e.event_at END) IS NOT NULL THEN 'failed'
        WHEN MAX(CASE WHEN e.event_type = 'read' THEN e.event_at END) IS NOT NULL THEN 'read'
        WHEN MAX(CASE WHEN e.event_type = 'delivered' THEN e.event_at END) IS NOT NULL THEN 'delivered'
        WHEN MAX(CASE WHEN e.event_type = 'sent' THEN e.event_at END) IS NOT NULL THEN 'sent'
        ELSE 'receipt_only'
    END AS status
FROM {{ source('messaging.events') }} AS e
GROUP BY e.tenant_id, e.message_id
