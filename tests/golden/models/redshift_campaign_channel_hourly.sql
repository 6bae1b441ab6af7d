CREATE MATERIALIZED VIEW models.campaign_channel_hourly DISTKEY (tenant_id) SORTKEY (tenant_id, campaign_id, channel, hour) AUTO REFRESH NO AS SELECT
  m.tenant_id,
  m.campaign_id,
  COALESCE(m.channel, 'unknown') AS channel,
  DATE_TRUNC('HOUR', m.sent_at) AS hour,
  COUNT(*) AS sent,
  COUNT(m.delivered_at) AS delivered,
  COUNT(m.read_at) AS opened,
  COUNT(m.failed_at) AS failed,
  CAST(COUNT(m.delivered_at) AS DOUBLE PRECISION) / COUNT(*) AS delivery_rate,
  CAST(COUNT(m.read_at) AS DOUBLE PRECISION) / NULLIF(COUNT(m.delivered_at), 0) AS read_rate,
  SUM(CASE WHEN m.delivered_at <= m.sent_at + INTERVAL '1 SECOND' THEN 1 ELSE 0 END) AS latency_le_1s,
  SUM(CASE WHEN m.delivered_at <= m.sent_at + INTERVAL '5 SECONDS' THEN 1 ELSE 0 END) AS latency_le_5s,
  SUM(CASE WHEN m.delivered_at <= m.sent_at + INTERVAL '30 SECONDS' THEN 1 ELSE 0 END) AS latency_le_30s,
  SUM(CASE WHEN m.delivered_at <= m.sent_at + INTERVAL '60 SECONDS' THEN 1 ELSE 0 END) AS latency_le_60s,
  SUM(CASE WHEN m.delivered_at <= m.sent_at + INTERVAL '300 SECONDS' THEN 1 ELSE 0 END) AS latency_le_300s,
  SUM(
    CASE WHEN m.delivered_at <= m.sent_at + INTERVAL '3600 SECONDS' THEN 1 ELSE 0 END
  ) AS latency_le_3600s
FROM models.message_status AS m
WHERE
  m.sent_at IS NOT NULL AND m.campaign_id IS NOT NULL
GROUP BY
  m.tenant_id,
  m.campaign_id,
  COALESCE(m.channel, 'unknown'),
  DATE_TRUNC('HOUR', m.sent_at);

ATTACH RLS POLICY models_tenant_isolation ON models.campaign_channel_hourly TO ROLE ta_query;

ALTER MATERIALIZED VIEW models.campaign_channel_hourly ROW LEVEL SECURITY ON;

GRANT SELECT ON models.campaign_channel_hourly TO ROLE ta_query;
