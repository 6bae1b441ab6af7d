CREATE MATERIALIZED VIEW models.failure_reasons_daily DISTKEY (tenant_id) SORTKEY (tenant_id, campaign_id, day, error_code) AUTO REFRESH NO AS SELECT
  m.tenant_id,
  m.campaign_id,
  DATE_TRUNC('DAY', m.sent_at) AS day,
  COALESCE(m.error_code, 'unknown') AS error_code,
  MAX(c.name) AS campaign_name,
  COUNT(*) AS failed
FROM models.message_status AS m
JOIN messaging.campaigns AS c
  ON c.tenant_id = m.tenant_id AND c.campaign_id = m.campaign_id
WHERE
  m.failed_at IS NOT NULL AND m.sent_at IS NOT NULL
GROUP BY
  m.tenant_id,
  m.campaign_id,
  DATE_TRUNC('DAY', m.sent_at),
  COALESCE(m.error_code, 'unknown');

ATTACH RLS POLICY models_tenant_isolation ON models.failure_reasons_daily TO ROLE ta_query;

ALTER MATERIALIZED VIEW models.failure_reasons_daily ROW LEVEL SECURITY ON;

GRANT SELECT ON models.failure_reasons_daily TO ROLE ta_query;
