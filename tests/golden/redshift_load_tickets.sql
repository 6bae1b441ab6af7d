CREATE SCHEMA IF NOT EXISTS support;

CREATE TABLE IF NOT EXISTS support.tickets (
    tenant_id       VARCHAR(63)  NOT NULL,
    ticket_id       BIGINT       NOT NULL,
    created_at      TIMESTAMPTZ  NOT NULL,
    updated_at      TIMESTAMPTZ  NOT NULL,
    status          VARCHAR(32),
    priority        VARCHAR(32),
    channel         VARCHAR(32),
    requester_id    BIGINT,
    assignee_id     BIGINT,
    group_id        BIGINT,
    organization_id BIGINT,
    loaded_at       TIMESTAMPTZ  DEFAULT SYSDATE,
    PRIMARY KEY (tenant_id, ticket_id)
) DISTKEY (tenant_id) SORTKEY (tenant_id, created_at);

CREATE TEMP TABLE stage_tickets (ticket_id BIGINT, created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ, status VARCHAR(32), priority VARCHAR(32), channel VARCHAR(32), requester_id BIGINT, assignee_id BIGINT, group_id BIGINT, organization_id BIGINT);

COPY stage_tickets (ticket_id, created_at, updated_at, status, priority, channel, requester_id, assignee_id, group_id, organization_id) FROM 's3://tenant-analytics-curated/curated/support/tickets/run=r1/batch=b0000/tenant_id=acme/' IAM_ROLE 'arn:aws:iam::111111111111:role/redshift-copy' FORMAT AS CSV TIMEFORMAT 'auto' EMPTYASNULL;

CREATE TEMP TABLE newest_tickets AS SELECT s.ticket_id, s.created_at, s.updated_at, s.status, s.priority, s.channel, s.requester_id, s.assignee_id, s.group_id, s.organization_id FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY ticket_id ORDER BY updated_at DESC) AS rn FROM stage_tickets) AS s LEFT JOIN support.tickets AS t ON t.tenant_id = 'acme' AND t.ticket_id = s.ticket_id WHERE s.rn = 1 AND (t.ticket_id IS NULL OR t.updated_at <= s.updated_at);

CREATE TEMP TABLE merge_stats AS SELECT (SELECT COUNT(*) FROM stage_tickets) AS rows_in, (SELECT COUNT(*) FROM newest_tickets AS n WHERE NOT EXISTS (SELECT 1 FROM support.tickets AS t WHERE t.tenant_id = 'acme' AND t.ticket_id = n.ticket_id)) AS inserted, (SELECT COUNT(*) FROM newest_tickets) AS touched;

MERGE INTO support.tickets USING newest_tickets AS n ON support.tickets.tenant_id = 'acme' AND support.tickets.ticket_id = n.ticket_id WHEN MATCHED THEN UPDATE SET created_at = n.created_at, updated_at = n.updated_at, status = n.status, priority = n.priority, channel = n.channel, requester_id = n.requester_id, assignee_id = n.assignee_id, group_id = n.group_id, organization_id = n.organization_id, loaded_at = SYSDATE WHEN NOT MATCHED THEN INSERT (tenant_id, ticket_id, created_at, updated_at, status, priority, channel, requester_id, assignee_id, group_id, organization_id, loaded_at) VALUES ('acme', n.ticket_id, n.created_at, n.updated_at, n.status, n.priority, n.channel, n.requester_id, n.assignee_id, n.group_id, n.organization_id, SYSDATE);

SELECT rows_in, inserted, touched - inserted AS updated, (SELECT COUNT(*) FROM support.tickets WHERE tenant_id = 'acme') AS size_rows FROM merge_stats;
