"""Query contract and planner: clear errors for bad input, values only ever as parameters."""

from __future__ import annotations

import pytest
import sqlglot

from tenant_analytics.errors import InvalidQuery
from tenant_analytics.query.contract import parse_query
from tenant_analytics.query.planner import plan_query

BASE = {"dataset": "tickets", "measures": ["tickets_created"]}


@pytest.mark.parametrize(
    ("document", "field", "message"),
    [
        ({**BASE, "measures": ["revenue"]}, "measures[0]", "unknown measure 'revenue'"),
        ({**BASE, "dimensions": ["channel", "colour"]}, "dimensions[1]", "unknown dimension 'colour'"),
        ({**BASE, "filters": [{"dimension": "channel", "op": "like", "values": ["x"]}]}, "filters[0].op", "like"),
        ({**BASE, "filters": [{"dimension": "channel", "op": "in", "values": []}]}, "filters[0].values", "at least"),
        ({**BASE, "time": {"dimension": "created_at", "granularity": "fortnight"}}, "time.granularity", "fortnight"),
        (
            {**BASE, "time": {"dimension": "created_at", "from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}},
            "time.from",
            "inverted",
        ),
        ({**BASE, "dataset": "orders"}, "dataset", "unknown dataset 'orders'"),
        ({**BASE, "tenant_id": "other"}, "tenant_id", "unknown field 'tenant_id'"),
        ({**BASE, "order": [{"by": "channel"}]}, "order[0].by", "cannot order by 'channel'"),
        ({**BASE, "limit": 0}, "limit", "limit"),
        ({**BASE, "dimensions": ["channel", "channel"]}, "dimensions[1]", "'channel' is listed twice"),
        (
            {
                "dataset": "messages",
                "measures": ["messages_sent"],
                "filters": [{"dimension": "campaign_id", "op": "eq", "values": ["7"]}],
            },
            "filters[0].values[0]",
            "dimension 'campaign_id' holds integers from -9223372036854775808 to 9223372036854775807; got '7'",
        ),
        (
            {
                "dataset": "messages",
                "measures": ["messages_sent"],
                "filters": [{"dimension": "campaign_id", "op": "in", "values": [1, 2**63]}],
            },
            "filters[0].values[1]",
            "holds integers",
        ),
    ],
)
def test_bad_queries_name_the_field(document: dict, field: str, message: str) -> None:
    with pytest.raises(InvalidQuery) as err:
        plan_query(parse_query(document), "acme")
    assert err.value.field == field
    assert message in err.value.message


def test_values_are_parameters_and_the_tenant_predicate_is_always_there() -> None:
    # Given a query whose filter value tries to inject SQL
    evil = "x' OR tenant_id <> 'acme"
    query = parse_query(
        {**BASE, "dimensions": ["channel"], "filters": [{"dimension": "channel", "op": "eq", "values": [evil]}]}
    )

    # When it is planned
    plan = plan_query(query, "acme")

    # Then the value appears only among the parameters, the tenant comes first, and the SQL parses
    assert evil not in plan.sql
    assert plan.params[0] == "acme" and evil in plan.params
    parsed = sqlglot.parse_one(plan.sql.replace("%s", "NULL"), read="postgres")
    assert "tenant_id" in parsed.find(sqlglot.exp.Where).sql()
    assert plan.sql.count("%s") == len(plan.params)


def test_an_integer_dimension_takes_integers_as_parameters() -> None:
    query = parse_query(
        {
            "dataset": "messages",
            "measures": ["messages_sent"],
            "filters": [{"dimension": "campaign_id", "op": "in", "values": [7, 9]}],
        }
    )
    plan = plan_query(query, "acme")
    assert plan.params[1:3] == [7, 9]
