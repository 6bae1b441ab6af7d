CREATE SCHEMA IF NOT EXISTS support;

CREATE TABLE IF NOT EXISTS support.users (
    tenant_id VARCHAR(63) NOT NULL,
    user_id BIGINT NOT NULL,
    name VARCHAR(256),
    role VARCHAR(32),
    organization_id BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL,
    loaded_at TIMESTAMPTZ DEFAULT SYSDATE,
    PRIMARY KEY (tenant_id, user_id)
) DISTKEY (tenant_id) SORTKEY (tenant_id, user_id);

CREATE TABLE IF NOT EXISTS support.groups (
    tenant_id VARCHAR(63) NOT NULL,
    group_id BIGINT NOT NULL,
    name VARCHAR(256),
    loaded_at TIMESTAMPTZ DEFAULT SYSDATE,
    PRIMARY KEY (tenant_id, group_id)
) DISTKEY (tenant_id) SORTKEY (tenant_id, group_id);

CREATE TABLE IF NOT EXISTS support.organizations (
    tenant_id VARCHAR(63) NOT NULL,
    organization_id BIGINT NOT NULL,
    name VARCHAR(256),
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL,
    loaded_at TIMESTAMPTZ DEFAULT SYSDATE,
    PRIMARY KEY (tenant_id, organization_id)
) DISTKEY (tenant_id) SORTKEY (tenant_id, organization_id);

CREATE TABLE IF NOT EXISTS support.tickets (
    tenant_id VARCHAR(63) NOT NULL,
    ticket_id BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    status VARCHAR(32),
    priority VARCHAR(32),
    channel VARCHAR(32),
    requester_id BIGINT,
    assignee_id BIGINT,
    group_id BIGINT,
    organization_id BIGINT,
    requester_name VARCHAR(256),
    assignee_name VARCHAR(256),
    group_name VARCHAR(256),
    organization_name VARCHAR(256),
    loaded_at TIMESTAMPTZ DEFAULT SYSDATE,
    PRIMARY KEY (tenant_id, ticket_id)
) DISTKEY (tenant_id) SORTKEY (tenant_id, created_at);

CREATE TABLE IF NOT EXISTS support.ticket_events (
    tenant_id VARCHAR(63) NOT NULL,
    ticket_id BIGINT NOT NULL,
    event_id BIGINT NOT NULL,
    event_at TIMESTAMPTZ NOT NULL,
    event_type VARCHAR(32),
    author_id BIGINT,
    public BOOLEAN,
    previous_value VARCHAR(64),
    value VARCHAR(64),
    loaded_at TIMESTAMPTZ DEFAULT SYSDATE,
    PRIMARY KEY (tenant_id, ticket_id, event_id)
) DISTKEY (tenant_id) SORTKEY (tenant_id, event_at);

CREATE TABLE IF NOT EXISTS support.ticket_metrics (
    tenant_id VARCHAR(63) NOT NULL,
    ticket_id BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    current_status VARCHAR(32),
    first_reply_at TIMESTAMPTZ,
    first_reply_seconds BIGINT,
    solved_at TIMESTAMPTZ,
    full_resolution_seconds BIGINT,
    reopens BIGINT,
    replies BIGINT,
    agent_touches BIGINT,
    loaded_at TIMESTAMPTZ DEFAULT SYSDATE,
    PRIMARY KEY (tenant_id, ticket_id)
) DISTKEY (tenant_id) SORTKEY (tenant_id, created_at);

CREATE TABLE IF NOT EXISTS support.daily_ticket_counts (
    tenant_id VARCHAR(63) NOT NULL,
    day DATE NOT NULL,
    created BIGINT,
    solved BIGINT,
    reopened BIGINT,
    backlog BIGINT,
    loaded_at TIMESTAMPTZ DEFAULT SYSDATE,
    PRIMARY KEY (tenant_id, day)
) DISTKEY (tenant_id) SORTKEY (tenant_id, day);

CREATE TEMP TABLE stage_users (user_id BIGINT, name VARCHAR(256), role VARCHAR(32), organization_id BIGINT, created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ);

COPY stage_users (user_id, name, role, organization_id, created_at, updated_at) FROM 's3://tenant-analytics-curated/curated/support/run=r1/batch=b0000/users/tenant_id=acme/' IAM_ROLE 'arn:aws:iam::111111111111:role/redshift-copy' FORMAT AS CSV TIMEFORMAT 'auto' EMPTYASNULL;

CREATE TEMP TABLE newest_users AS SELECT s.user_id, s.name, s.role, s.organization_id, s.created_at, s.updated_at FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY updated_at DESC) AS rn FROM stage_users) AS s LEFT JOIN support.users AS t ON t.tenant_id = 'acme' AND t.user_id = s.user_id WHERE s.rn = 1 AND (t.user_id IS NULL OR t.updated_at <= s.updated_at);

MERGE INTO support.users USING newest_users AS n ON support.users.tenant_id = 'acme' AND support.users.user_id = n.user_id WHEN MATCHED THEN UPDATE SET name = n.name, role = n.role, organization_id = n.organization_id, created_at = n.created_at, updated_at = n.updated_at, loaded_at = SYSDATE WHEN NOT MATCHED THEN INSERT (tenant_id, user_id, name, role, organization_id, created_at, updated_at, loaded_at) VALUES ('acme', n.user_id, n.name, n.role, n.organization_id, n.created_at, n.updated_at, SYSDATE);

CREATE TEMP TABLE stage_groups (group_id BIGINT, name VARCHAR(256));

COPY stage_groups (group_id, name) FROM 's3://tenant-analytics-curated/curated/support/run=r1/batch=b0000/groups/tenant_id=acme/' IAM_ROLE 'arn:aws:iam::111111111111:role/redshift-copy' FORMAT AS CSV TIMEFORMAT 'auto' EMPTYASNULL;

CREATE TEMP TABLE newest_groups AS SELECT s.group_id, s.name FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY group_id ORDER BY group_id) AS rn FROM stage_groups) AS s LEFT JOIN support.groups AS t ON t.tenant_id = 'acme' AND t.group_id = s.group_id WHERE s.rn = 1;

MERGE INTO support.groups USING newest_groups AS n ON support.groups.tenant_id = 'acme' AND support.groups.group_id = n.group_id WHEN MATCHED THEN UPDATE SET name = n.name, loaded_at = SYSDATE WHEN NOT MATCHED THEN INSERT (tenant_id, group_id, name, loaded_at) VALUES ('acme', n.group_id, n.name, SYSDATE);

CREATE TEMP TABLE stage_organizations (organization_id BIGINT, name VARCHAR(256), created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ);

COPY stage_organizations (organization_id, name, created_at, updated_at) FROM 's3://tenant-analytics-curated/curated/support/run=r1/batch=b0000/organizations/tenant_id=acme/' IAM_ROLE 'arn:aws:iam::111111111111:role/redshift-copy' FORMAT AS CSV TIMEFORMAT 'auto' EMPTYASNULL;

CREATE TEMP TABLE newest_organizations AS SELECT s.organization_id, s.name, s.created_at, s.updated_at FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY organization_id ORDER BY updated_at DESC) AS rn FROM stage_organizations) AS s LEFT JOIN support.organizations AS t ON t.tenant_id = 'acme' AND t.organization_id = s.organization_id WHERE s.rn = 1 AND (t.organization_id IS NULL OR t.updated_at <= s.updated_at);

MERGE INTO support.organizations USING newest_organizations AS n ON support.organizations.tenant_id = 'acme' AND support.organizations.organization_id = n.organization_id WHEN MATCHED THEN UPDATE SET name = n.name, created_at = n.created_at, updated_at = n.updated_at, loaded_at = SYSDATE WHEN NOT MATCHED THEN INSERT (tenant_id, organization_id, name, created_at, updated_at, loaded_at) VALUES ('acme', n.organization_id, n.name, n.created_at, n.updated_at, SYSDATE);

CREATE TEMP TABLE stage_tickets (ticket_id BIGINT, created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ, status VARCHAR(32), priority VARCHAR(32), channel VARCHAR(32), requester_id BIGINT, assignee_id BIGINT, group_id BIGINT, organization_id BIGINT, requester_name VARCHAR(256), assignee_name VARCHAR(256), group_name VARCHAR(256), organization_name VARCHAR(256));

COPY stage_tickets (ticket_id, created_at, updated_at, status, priority, channel, requester_id, assignee_id, group_id, organization_id, requester_name, assignee_name, group_name, organization_name) FROM 's3://tenant-analytics-curated/curated/support/run=r1/batch=b0000/tickets/tenant_id=acme/' IAM_ROLE 'arn:aws:iam::111111111111:role/redshift-copy' FORMAT AS CSV TIMEFORMAT 'auto' EMPTYASNULL;

CREATE TEMP TABLE newest_tickets AS SELECT s.ticket_id, s.created_at, s.updated_at, s.status, s.priority, s.channel, s.requester_id, s.assignee_id, s.group_id, s.organization_id, s.requester_name, s.assignee_name, s.group_name, s.organization_name FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY ticket_id ORDER BY updated_at DESC) AS rn FROM stage_tickets) AS s LEFT JOIN support.tickets AS t ON t.tenant_id = 'acme' AND t.ticket_id = s.ticket_id WHERE s.rn = 1 AND (t.ticket_id IS NULL OR t.updated_at <= s.updated_at);

CREATE TEMP TABLE merge_stats AS SELECT (SELECT COUNT(*) FROM stage_tickets) AS rows_in, (SELECT COUNT(*) FROM newest_tickets AS n WHERE NOT EXISTS (SELECT 1 FROM support.tickets AS t WHERE t.tenant_id = 'acme' AND t.ticket_id = n.ticket_id)) AS inserted, (SELECT COUNT(*) FROM newest_tickets) AS touched;

MERGE INTO support.tickets USING newest_tickets AS n ON support.tickets.tenant_id = 'acme' AND support.tickets.ticket_id = n.ticket_id WHEN MATCHED THEN UPDATE SET created_at = n.created_at, updated_at = n.updated_at, status = n.status, priority = n.priority, channel = n.channel, requester_id = n.requester_id, assignee_id = n.assignee_id, group_id = n.group_id, organization_id = n.organization_id, requester_name = n.requester_name, assignee_name = n.assignee_name, group_name = n.group_name, organization_name = n.organization_name, loaded_at = SYSDATE WHEN NOT MATCHED THEN INSERT (tenant_id, ticket_id, created_at, updated_at, status, priority, channel, requester_id, assignee_id, group_id, organization_id, requester_name, assignee_name, group_name, organization_name, loaded_at) VALUES ('acme', n.ticket_id, n.created_at, n.updated_at, n.status, n.priority, n.channel, n.requester_id, n.assignee_id, n.group_id, n.organization_id, n.requester_name, n.assignee_name, n.group_name, n.organization_name, SYSDATE);

CREATE TEMP TABLE stage_ticket_events (ticket_id BIGINT, event_id BIGINT, event_at TIMESTAMPTZ, event_type VARCHAR(32), author_id BIGINT, public BOOLEAN, previous_value VARCHAR(64), value VARCHAR(64));

COPY stage_ticket_events (ticket_id, event_id, event_at, event_type, author_id, public, previous_value, value) FROM 's3://tenant-analytics-curated/curated/support/run=r1/batch=b0000/ticket_events/tenant_id=acme/' IAM_ROLE 'arn:aws:iam::111111111111:role/redshift-copy' FORMAT AS CSV TIMEFORMAT 'auto' EMPTYASNULL;

CREATE TEMP TABLE newest_ticket_events AS SELECT s.ticket_id, s.event_id, s.event_at, s.event_type, s.author_id, s.public, s.previous_value, s.value FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY ticket_id, event_id ORDER BY ticket_id, event_id) AS rn FROM stage_ticket_events) AS s LEFT JOIN support.ticket_events AS t ON t.tenant_id = 'acme' AND t.ticket_id = s.ticket_id AND t.event_id = s.event_id WHERE s.rn = 1 AND t.ticket_id IS NULL;

INSERT INTO support.ticket_events (tenant_id, ticket_id, event_id, event_at, event_type, author_id, public, previous_value, value, loaded_at) SELECT 'acme', ticket_id, event_id, event_at, event_type, author_id, public, previous_value, value, SYSDATE FROM newest_ticket_events;

CREATE TEMP TABLE stage_ticket_metrics (ticket_id BIGINT, created_at TIMESTAMPTZ, current_status VARCHAR(32), first_reply_at TIMESTAMPTZ, first_reply_seconds BIGINT, solved_at TIMESTAMPTZ, full_resolution_seconds BIGINT, reopens BIGINT, replies BIGINT, agent_touches BIGINT);

COPY stage_ticket_metrics (ticket_id, created_at, current_status, first_reply_at, first_reply_seconds, solved_at, full_resolution_seconds, reopens, replies, agent_touches) FROM 's3://tenant-analytics-curated/curated/support/run=r1/batch=b0000/ticket_metrics/tenant_id=acme/' IAM_ROLE 'arn:aws:iam::111111111111:role/redshift-copy' FORMAT AS CSV TIMEFORMAT 'auto' EMPTYASNULL;

CREATE TEMP TABLE newest_ticket_metrics AS SELECT s.ticket_id, s.created_at, s.current_status, s.first_reply_at, s.first_reply_seconds, s.solved_at, s.full_resolution_seconds, s.reopens, s.replies, s.agent_touches FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY ticket_id ORDER BY ticket_id) AS rn FROM stage_ticket_metrics) AS s LEFT JOIN support.ticket_metrics AS t ON t.tenant_id = 'acme' AND t.ticket_id = s.ticket_id WHERE s.rn = 1;

MERGE INTO support.ticket_metrics USING newest_ticket_metrics AS n ON support.ticket_metrics.tenant_id = 'acme' AND support.ticket_metrics.ticket_id = n.ticket_id WHEN MATCHED THEN UPDATE SET created_at = n.created_at, current_status = n.current_status, first_reply_at = n.first_reply_at, first_reply_seconds = n.first_reply_seconds, solved_at = n.solved_at, full_resolution_seconds = n.full_resolution_seconds, reopens = n.reopens, replies = n.replies, agent_touches = n.agent_touches, loaded_at = SYSDATE WHEN NOT MATCHED THEN INSERT (tenant_id, ticket_id, created_at, current_status, first_reply_at, first_reply_seconds, solved_at, full_resolution_seconds, reopens, replies, agent_touches, loaded_at) VALUES ('acme', n.ticket_id, n.created_at, n.current_status, n.first_reply_at, n.first_reply_seconds, n.solved_at, n.full_resolution_seconds, n.reopens, n.replies, n.agent_touches, SYSDATE);

CREATE TEMP TABLE stage_daily_ticket_counts (day DATE, created BIGINT, solved BIGINT, reopened BIGINT, backlog BIGINT);

COPY stage_daily_ticket_counts (day, created, solved, reopened, backlog) FROM 's3://tenant-analytics-curated/curated/support/run=r1/batch=b0000/daily_ticket_counts/tenant_id=acme/' IAM_ROLE 'arn:aws:iam::111111111111:role/redshift-copy' FORMAT AS CSV TIMEFORMAT 'auto' EMPTYASNULL;

DELETE FROM support.daily_ticket_counts WHERE tenant_id = 'acme';

INSERT INTO support.daily_ticket_counts (tenant_id, day, created, solved, reopened, backlog, loaded_at) SELECT 'acme', day, created, solved, reopened, backlog, SYSDATE FROM stage_daily_ticket_counts;

SELECT rows_in, inserted, touched - inserted AS updated, (SELECT COUNT(*) FROM support.tickets WHERE tenant_id = 'acme') AS size_rows, (SELECT COUNT(*) FROM stage_users) AS rows_users, (SELECT COUNT(*) FROM stage_groups) AS rows_groups, (SELECT COUNT(*) FROM stage_organizations) AS rows_organizations, (SELECT COUNT(*) FROM stage_tickets) AS rows_tickets, (SELECT COUNT(*) FROM stage_ticket_events) AS rows_ticket_events, (SELECT COUNT(*) FROM stage_ticket_metrics) AS rows_ticket_metrics, (SELECT COUNT(*) FROM stage_daily_ticket_counts) AS rows_daily_ticket_counts FROM merge_stats;
