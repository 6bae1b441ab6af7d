CREATE MATERIALIZED VIEW models.message_status DISTKEY (tenant_id) SORTKEY (tenant_id, message_id) AUTO REFRESH NO AS SELECT
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
  CASE
    WHEN MAX(CASE WHEN e.event_type = 'failed' THEN e.event_at END) IS NOT NULL
    THEN 'failed'
    WHEN MAX(CASE WHEN e.event_type = 'read' THEN e.event_at END) IS NOT NULL
    THEN 'read'
    WHEN MAX(CASE WHEN e.event_type = 'delivered' THEN e.event_at END) IS NOT NULL
    THEN 'delivered'
    WHEN MAX(CASE WHEN e.event_type = 'sent' THEN e.event_at END) IS NOT NULL
    THEN 'sent'
    ELSE 'receipt_only'
  END AS status
FROM messaging.events AS e
GROUP BY
  e.tenant_id,
  e.message_id;

ATTACH RLS POLICY models_tenant_isolation ON models.message_status TO ROLE ta_query;

ALTER MATERIALIZED VIEW models.message_status ROW LEVEL SECURITY ON;

GRANT SELECT ON models.message_status TO ROLE ta_query;
