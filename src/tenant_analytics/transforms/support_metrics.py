"""Support metrics: denormalized tickets, per-ticket reply and resolution metrics, daily counts with backlog.

Pure DataFrame -> DataFrame functions, run by Glue, EMR and local Spark alike. Every input carries a string
``tenant_id`` column and every join and grouping includes it, so one run can serve many tenants at once.

Inputs are the raw source records read with the schemas below (fields not in a schema are ignored) plus
``tenant_id``; tickets are the output of ``support.normalize_tickets``. Days are UTC calendar days whatever
the session time zone.
"""

from __future__ import annotations

from datetime import date
from typing import Final

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, LongType, StringType, StructField, StructType, TimestampType

from tenant_analytics.transforms.support import iso_timestamp

RAW_TICKET_EVENT_SCHEMA: Final = StructType(
    [
        StructField("id", LongType()),
        StructField("ticket_id", LongType()),
        StructField("created_at", StringType()),
        StructField("event_type", StringType()),
        StructField("author_id", LongType()),
        StructField("public", BooleanType()),
        StructField("previous_value", StringType()),
        StructField("value", StringType()),
    ]
)
RAW_USER_SCHEMA: Final = StructType(
    [
        StructField("id", LongType()),
        StructField("name", StringType()),
        StructField("email", StringType()),
        StructField("role", StringType()),
        StructField("organization_id", LongType()),
        StructField("created_at", StringType()),
        StructField("updated_at", StringType()),
    ]
)
RAW_GROUP_SCHEMA: Final = StructType([StructField("id", LongType()), StructField("name", StringType())])
RAW_ORGANIZATION_SCHEMA: Final = StructType(
    [
        StructField("id", LongType()),
        StructField("name", StringType()),
        StructField("created_at", StringType()),
        StructField("updated_at", StringType()),
    ]
)

AGENT_ROLES: Final[tuple[str, ...]] = ("agent", "admin")
DONE_STATUSES: Final[tuple[str, ...]] = ("solved", "closed")
OPEN_STATUSES: Final[tuple[str, ...]] = ("new", "open", "pending", "hold")

TICKET_METRIC_COLUMNS: Final[tuple[str, ...]] = (
    "tenant_id",
    "ticket_id",
    "created_at",
    "current_status",
    "first_reply_at",
    "first_reply_seconds",
    "solved_at",
    "full_resolution_seconds",
    "reopens",
    "replies",
    "agent_touches",
)
DAILY_TICKET_COUNT_COLUMNS: Final[tuple[str, ...]] = ("tenant_id", "day", "created", "solved", "reopened", "backlog")

_SECONDS_PER_DAY: Final = 86400


def _timestamp(df: DataFrame, name: str) -> Column:
    """The column as a timestamp: kept if it already is one, else parsed from an ISO-8601 string (null if bad)."""
    if isinstance(df.schema[name].dataType, TimestampType):
        return F.col(name)
    return iso_timestamp(name)


def _utc_day(ts: Column) -> Column:
    """The UTC calendar day of a timestamp, independent of spark.sql.session.timeZone."""
    return F.date_from_unix_date(F.floor(F.unix_seconds(ts) / _SECONDS_PER_DAY).cast("int"))


def _seconds_between(start: Column, end: Column) -> Column:
    return F.unix_seconds(end) - F.unix_seconds(start)


def _typed_events(events: DataFrame, event_types: tuple[str, ...] | None = None) -> DataFrame:
    """Events with parsed, lower-cased fields, one row per (tenant_id, ticket_id, id), hash-partitioned by ticket.

    Records without an id, a ticket_id or a parseable created_at are dropped. ``public`` null means not public.
    The partitioning by (tenant_id, ticket_id) is what the callers' joins, groupings and windows need, so the
    de-duplication and all of them share one shuffle of the events.
    """
    typed = events.select(
        F.col("tenant_id").cast("string").alias("tenant_id"),
        F.col("id").alias("event_id"),
        F.col("ticket_id"),
        _timestamp(events, "created_at").alias("event_at"),
        F.lower("event_type").alias("event_type"),
        F.col("author_id"),
        F.coalesce(F.col("public"), F.lit(False)).alias("public"),
        F.lower("previous_value").alias("previous_value"),
        F.lower("value").alias("value"),
    ).where(F.col("event_id").isNotNull() & F.col("ticket_id").isNotNull() & F.col("event_at").isNotNull())
    if event_types is not None:
        typed = typed.where(F.col("event_type").isin(*event_types))
    return typed.repartition("tenant_id", "ticket_id").dropDuplicates(["tenant_id", "ticket_id", "event_id"])


def _latest_users(users: DataFrame) -> DataFrame:
    """One row per (tenant_id, id): the version with the latest updated_at (ties: greatest name, email, role)."""
    latest = F.max(
        F.struct(
            _timestamp(users, "updated_at").alias("updated_at"),
            F.col("name"),
            F.col("email"),
            F.lower("role").alias("role"),
        )
    )
    return (
        users.where(F.col("id").isNotNull())
        .groupBy(F.col("tenant_id").cast("string").alias("tenant_id"), "id")
        .agg(latest.alias("_v"))
        .select("tenant_id", "id", "_v.name", "_v.email", "_v.role")
    )


def _names_by_id(df: DataFrame, id_alias: str, name_alias: str) -> DataFrame:
    """(tenant_id, <id_alias>, <name_alias>) with one row per id: the latest updated_at if the input has one."""
    if "updated_at" in df.columns:
        name = F.max(F.struct(_timestamp(df, "updated_at").alias("u"), F.col("name").alias("n")))["n"]
    else:
        name = F.max("name")
    return (
        df.where(F.col("id").isNotNull())
        .groupBy(F.col("tenant_id").cast("string").alias("tenant_id"), F.col("id").alias(id_alias))
        .agg(name.alias(name_alias))
    )


def _day_entry(day: Column, created: Column, solved: Column, reopened: Column, backlog_change: Column) -> Column:
    """One contribution to a tenant's day, as a struct (all counts long)."""
    return F.struct(
        day.alias("day"),
        created.cast("long").alias("created"),
        solved.cast("long").alias("solved"),
        reopened.cast("long").alias("reopened"),
        backlog_change.cast("long").alias("backlog_change"),
    )


def denormalize_tickets(tickets: DataFrame, users: DataFrame, groups: DataFrame, organizations: DataFrame) -> DataFrame:
    """Tickets with the names of the people, group and organization they reference.

    ``tickets`` is ``normalize_tickets`` output; ``users``, ``groups`` and ``organizations`` have the RAW_*_SCHEMA
    columns plus ``tenant_id``. Each reference is a left join on (tenant_id, id): a null or unknown id keeps the
    ticket with nulls. Of several versions of a user or organization the latest ``updated_at`` is used, so the
    result has exactly one row per input ticket.

    Returns every column of ``tickets`` followed by ``requester_name``, ``requester_email``, ``requester_role``
    (lower case), ``assignee_name``, ``group_name`` and ``organization_name`` (all strings).
    """
    people = _latest_users(users)
    requesters = people.select(
        "tenant_id",
        F.col("id").alias("requester_id"),
        F.col("name").alias("requester_name"),
        F.col("email").alias("requester_email"),
        F.col("role").alias("requester_role"),
    )
    assignees = people.select("tenant_id", F.col("id").alias("assignee_id"), F.col("name").alias("assignee_name"))
    return (
        tickets.join(requesters, ["tenant_id", "requester_id"], "left")
        .join(assignees, ["tenant_id", "assignee_id"], "left")
        .join(_names_by_id(groups, "group_id", "group_name"), ["tenant_id", "group_id"], "left")
        .join(
            _names_by_id(organizations, "organization_id", "organization_name"),
            ["tenant_id", "organization_id"],
            "left",
        )
        .select(
            *tickets.columns,
            "requester_name",
            "requester_email",
            "requester_role",
            "assignee_name",
            "group_name",
            "organization_name",
        )
    )


def ticket_metrics(tickets: DataFrame, events: DataFrame, users: DataFrame) -> DataFrame:
    """Reply, resolution and activity metrics of every ticket, from its event history.

    ``tickets`` is ``normalize_tickets`` output (one row per ticket); ``events`` has the RAW_TICKET_EVENT_SCHEMA
    columns plus ``tenant_id``; ``users`` has RAW_USER_SCHEMA plus ``tenant_id``. Events are matched to tickets
    on (tenant_id, ticket_id); events of tickets not in ``tickets`` are ignored. Definitions:

    * an event delivered more than once (same tenant_id, ticket_id and id) counts once;
    * an *agent* is a user of the same tenant whose role is ``agent`` or ``admin`` (unknown authors are not);
    * a *reply* is a ``comment`` event with ``public`` true authored by an agent (internal notes, where public
      is false or null, and comments by end users are not replies);
    * ``first_reply_at``: the earliest reply strictly after the ticket's ``created_at``; null if none;
    * ``first_reply_seconds``: ``first_reply_at - created_at`` in whole seconds; null if no reply;
    * ``solved_at``: the time of the last ``status_change`` event whose value is ``solved``, whatever the
      current status; null if none;
    * ``full_resolution_seconds``: ``solved_at - created_at`` in whole seconds when the current status is
      solved or closed and ``solved_at`` is known, else null;
    * ``reopens``: ``status_change`` events from solved or closed (``previous_value``) to new, open, pending or
      hold (``value``);
    * ``replies``: all replies, whenever they happened;
    * ``agent_touches``: updates by an agent: distinct instants at which an agent authored an event other than
      ``create`` (one update emits several events at once: a comment, a status change, an assignment);
    * ``current_status``: the ticket's ``status`` in ``tickets``.

    Returns one row per ticket of ``tickets`` with TICKET_METRIC_COLUMNS: tenant_id (string), ticket_id (long),
    created_at (timestamp), current_status (string), first_reply_at (timestamp), first_reply_seconds (long),
    solved_at (timestamp), full_resolution_seconds (long), reopens, replies, agent_touches (long, 0 if none).
    """
    # Agents are few next to events: broadcasting them keeps the events' partitioning by ticket.
    agents = (
        _latest_users(users)
        .where(F.col("role").isin(*AGENT_ROLES))
        .select("tenant_id", F.col("id").alias("author_id"), F.lit(True).alias("_by_agent"))
    )
    typed = _typed_events(events).join(F.broadcast(agents), ["tenant_id", "author_id"], "left")
    history = tickets.select("tenant_id", "ticket_id", "created_at", F.col("status").alias("current_status")).join(
        typed, ["tenant_id", "ticket_id"], "left"
    )

    by_agent = F.coalesce(F.col("_by_agent"), F.lit(False))
    is_reply = (F.col("event_type") == "comment") & F.col("public") & by_agent
    is_status_change = F.col("event_type") == "status_change"
    is_reopen = is_status_change & F.col("previous_value").isin(*DONE_STATUSES) & F.col("value").isin(*OPEN_STATUSES)
    per_ticket = history.groupBy("tenant_id", "ticket_id", "created_at", "current_status").agg(
        F.min(F.when(is_reply & (F.col("event_at") > F.col("created_at")), F.col("event_at"))).alias("first_reply_at"),
        F.max(F.when(is_status_change & (F.col("value") == "solved"), F.col("event_at"))).alias("solved_at"),
        F.count(F.when(is_reopen, 1)).alias("reopens"),
        F.count(F.when(is_reply, 1)).alias("replies"),
        F.countDistinct(F.when(by_agent & ~F.col("event_type").eqNullSafe("create"), F.col("event_at"))).alias(
            "agent_touches"
        ),
    )
    is_done = F.col("current_status").isin(*DONE_STATUSES)
    return per_ticket.select(
        "tenant_id",
        "ticket_id",
        "created_at",
        "current_status",
        "first_reply_at",
        _seconds_between(F.col("created_at"), F.col("first_reply_at")).alias("first_reply_seconds"),
        "solved_at",
        F.when(is_done, _seconds_between(F.col("created_at"), F.col("solved_at"))).alias("full_resolution_seconds"),
        "reopens",
        "replies",
        "agent_touches",
    )


def daily_ticket_counts(
    tickets: DataFrame, events: DataFrame, day_from: date | None = None, day_to: date | None = None
) -> DataFrame:
    """Tickets created, solved and reopened per tenant and UTC day, with the backlog at the end of each day.

    ``tickets`` is ``normalize_tickets`` output; ``events`` has the RAW_TICKET_EVENT_SCHEMA columns plus
    ``tenant_id``. Only events of tickets in ``tickets`` count, and an event delivered more than once (same
    tenant_id, ticket_id and id) counts once. A *status event* is a ``create`` event (its value is the initial
    status) or a ``status_change`` event (its value is the new status); status events without a value are
    ignored. Definitions, for a day D:

    * ``created``: tickets whose ``created_at`` falls on D;
    * ``solved``: ``status_change`` events to ``solved`` on D;
    * ``reopened``: ``status_change`` events from solved or closed to new, open, pending or hold on D;
    * ``backlog``: tickets created on or before D whose status at the end of D is neither solved nor closed.
      That status is the value of the last status event before D + 1 at 00:00 UTC (ties in time: the
      greater event id); a ticket with no status event by then is taken to be ``new``.

    Rows: per tenant having tickets, every day from ``day_from`` (default: the tenant's first day with a
    ticket created or a status event) to ``day_to`` (default: its last such day), including days on which
    nothing happened; history before ``day_from`` still counts towards the backlog.

    Returns DAILY_TICKET_COUNT_COLUMNS: tenant_id (string), day (date), created, solved, reopened, backlog
    (long, 0 when none).
    """
    if day_from is not None and day_to is not None and day_from > day_to:
        raise ValueError(f"day_from {day_from.isoformat()} is after day_to {day_to.isoformat()}")

    is_status_change = F.col("event_type") == "status_change"
    status_events = (
        _typed_events(events, ("create", "status_change"))
        .where(F.col("value").isNotNull())
        .select(
            "tenant_id",
            "ticket_id",
            "event_id",
            "event_at",
            _utc_day(F.col("event_at")).alias("event_day"),
            F.when(F.col("value").isin(*DONE_STATUSES), 0).otherwise(1).alias("open"),
            (is_status_change & (F.col("value") == "solved")).alias("is_solve"),
            (
                is_status_change & F.col("previous_value").isin(*DONE_STATUSES) & F.col("value").isin(*OPEN_STATUSES)
            ).alias("is_reopen"),
        )
    )
    history = tickets.select("tenant_id", "ticket_id", _utc_day(F.col("created_at")).alias("created_day")).join(
        status_events, ["tenant_id", "ticket_id"], "left"
    )
    # One row per ticket and day with status events (one row with a null day for a ticket without any): the
    # open flag of the ticket's status at the end of that day, and the day's solves and reopens.
    per_ticket_day = history.groupBy("tenant_id", "ticket_id", "created_day", "event_day").agg(
        F.max_by("open", F.struct("event_at", "event_id")).alias("open"),
        F.count(F.when(F.col("is_solve"), 1)).alias("solved"),
        F.count(F.when(F.col("is_reopen"), 1)).alias("reopened"),
    )

    # The backlog is a running sum of changes: +1 when a ticket is created (new until a status event says
    # otherwise), then the change of its open flag on each day with status events; events dated before the
    # creation day take effect on the creation day, while their solves and reopens stay on their own day.
    by_ticket = Window.partitionBy("tenant_id", "ticket_id").orderBy("event_day")
    with_changes = per_ticket_day.select(
        "*",
        (F.row_number().over(by_ticket) == 1).alias("first_row"),
        (F.col("open") - F.lag("open", 1, 1).over(by_ticket)).alias("change"),
    )
    first_row = F.col("first_row")
    change = F.col("change")
    has_events = F.col("event_day").isNotNull()
    early = F.col("event_day") < F.col("created_day")
    zero = F.lit(0)
    entries = F.array(
        F.when(first_row, _day_entry(F.col("created_day"), F.lit(1), zero, zero, F.lit(1))),
        F.when(
            has_events,
            _day_entry(
                F.greatest("event_day", "created_day"),
                zero,
                F.when(early, 0).otherwise(F.col("solved")),
                F.when(early, 0).otherwise(F.col("reopened")),
                change,
            ),
        ),
        F.when(has_events & early, _day_entry(F.col("event_day"), zero, F.col("solved"), F.col("reopened"), zero)),
    )
    per_day = (
        with_changes.select("tenant_id", F.explode(entries).alias("entry"))
        .where(F.col("entry").isNotNull())
        .groupBy("tenant_id", "entry.day")
        .agg(
            F.sum("entry.created").alias("created"),
            F.sum("entry.solved").alias("solved"),
            F.sum("entry.reopened").alias("reopened"),
            F.sum("entry.backlog_change").alias("backlog_change"),
        )
    )

    # Each day with activity also stands for the quiet days up to the next one (same backlog, no counts); a
    # tenant's first day reaches back to day_from and its last day forward to day_to.
    by_day = Window.partitionBy("tenant_id").orderBy("day")
    timeline = per_day.select(
        "*",
        F.sum("backlog_change").over(by_day.rowsBetween(Window.unboundedPreceding, 0)).alias("backlog"),
        F.lead("day").over(by_day).alias("next_day"),
        (F.row_number().over(by_day) == 1).alias("is_first"),
    )
    start = F.col("day")
    end = F.coalesce(F.date_sub(F.col("next_day"), 1), F.col("day"))
    if day_from is not None:
        start = F.greatest(F.when(F.col("is_first"), F.least(F.lit(day_from), start)).otherwise(start), F.lit(day_from))
    if day_to is not None:
        end = F.least(
            F.coalesce(F.date_sub(F.col("next_day"), 1), F.greatest(F.lit(day_to), F.col("day"))), F.lit(day_to)
        )
    on_day = F.col("calendar_day") == F.col("day")
    none = F.lit(0).cast("long")
    return (
        timeline.where(start <= end)
        .select("*", F.explode(F.sequence(start, end)).alias("calendar_day"))
        .select(
            "tenant_id",
            F.col("calendar_day").alias("day"),
            F.when(on_day, F.col("created")).otherwise(none).alias("created"),
            F.when(on_day, F.col("solved")).otherwise(none).alias("solved"),
            F.when(on_day, F.col("reopened")).otherwise(none).alias("reopened"),
            F.when(F.col("calendar_day") < F.col("day"), none).otherwise(F.col("backlog")).alias("backlog"),
        )
    )


def curated_ticket_events(events: DataFrame) -> DataFrame:
    """Landed ticket events as rows of the curated ``ticket_events`` table, each (tenant, ticket, id) once.

    ``events`` has the RAW_TICKET_EVENT_SCHEMA columns plus ``tenant_id``. Returns tenant_id, ticket_id,
    event_id, event_at, event_type, author_id, public, previous_value, value (lower-cased text fields).
    """
    return _typed_events(events).select(
        "tenant_id",
        "ticket_id",
        "event_id",
        "event_at",
        "event_type",
        "author_id",
        "public",
        "previous_value",
        "value",
    )


def latest_by_id(records: DataFrame, columns: dict[str, Column], *, timestamps: tuple[str, ...] = ()) -> DataFrame:
    """One row per (tenant_id, id) of landed reference records: the version with the latest ``updated_at``.

    ``columns`` maps each output column to its expression over the records (``timestamps`` are parsed first);
    records without an id are dropped, and without an ``updated_at`` column any version may win.
    Returns tenant_id followed by the ``columns`` in order.
    """
    parsed = records.select(
        F.col("tenant_id").cast("string").alias("tenant_id"),
        *[
            _timestamp(records, name).alias(name) if name in timestamps else F.col(name)
            for name in records.columns
            if name != "tenant_id"
        ],
    ).where(F.col("id").isNotNull())
    order = F.col("updated_at").desc_nulls_last() if "updated_at" in records.columns else F.col("id")
    newest = Window.partitionBy("tenant_id", "id").orderBy(order)
    return (
        parsed.withColumn("_rank", F.row_number().over(newest))
        .where(F.col("_rank") == 1)
        .select("tenant_id", *[expr.alias(name) for name, expr in columns.items()])
    )
