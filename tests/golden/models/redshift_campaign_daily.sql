CREATE MATERIALIZED VIEW models.campaign_daily DISTKEY (tenant_id) SORTKEY (tenant_id, campaign_id, day) AUTO REFRESH NO AS SELECT
  h.tenant_id,
  h.campaign_id,
  DATE_TRUNC('DAY', h.hour) AS day,
  SUM(h.sent) AS sent,
  SUM(h.delivered) AS delivered,
  SUM(h.opened) AS opened,
  SUM(h.failed) AS failed,
  CAST(SUM(h.delivered) AS DOUBLE PRECISION) / NULLIF(SUM(h.sent), 0) AS delivery_rate,
  CAST(SUM(h.opened) AS DOUBLE PRECISION) / NULLIF(SUM(h.delivered), 0) AS read_rate,
  SUM(h.latency_le_1s) AS latency_le_1s,
  SUM(h.latency_le_5s) AS latency_le_5s,
  SUM(h.latency_le_30s) AS latency_le_30s,
  SUM(h.latency_le_60s) AS latency_le_60s,
  SUM(h.latency_le_300s) AS latency_le_300s,
  SUM(h.latency_le_3600s) AS latency_le_3600s
FROM models.campaign_channel_hourly AS h
GROUP BY
  h.tenant_id,
  h.campaign_id,
  DATE_TRUNC('DAY', h.hour);

ATTACH RLS POLICY models_tenant_isolation ON models.campaign_daily TO ROLE ta_query;

ALTER MATERIALIZED VIEW models.campaign_daily ROW LEVEL SECURITY ON;

GRANT SELECT ON models.campaign_daily TO ROLE ta_query;
