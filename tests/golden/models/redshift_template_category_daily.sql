CREATE MATERIALIZED VIEW models.template_category_daily DISTKEY (tenant_id) SORTKEY (tenant_id, category, day) AUTO REFRESH NO AS SELECT
  m.tenant_id,
  COALESCE(t.category, 'uncategorised') AS category,
  DATE_TRUNC('DAY', m.sent_at) AS day,
  COUNT(*) AS sent,
  COUNT(m.delivered_at) AS delivered,
  COUNT(m.read_at) AS opened,
  COUNT(m.failed_at) AS failed,
  CAST(COUNT(m.delivered_at) AS DOUBLE PRECISION) / COUNT(*) AS delivery_rate
FROM models.message_status AS m
JOIN messaging.templates AS t
  ON t.tenant_id = m.tenant_id AND t.template_id = m.template_id
WHERE
  m.sent_at IS NOT NULL
GROUP BY
  m.tenant_id,
  COALESCE(t.category, 'uncategorised'),
  DATE_TRUNC('DAY', m.sent_at);

ATTACH RLS POLICY models_tenant_isolation ON models.template_category_daily TO ROLE ta_query;

ALTER MATERIALIZED VIEW models.template_category_daily ROW LEVEL SECURITY ON;

GRANT SELECT ON models.template_category_daily TO ROLE ta_query;
