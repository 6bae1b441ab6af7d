"""The query contract of DESIGN.md section 7: one JSON shape for the HTTP API, the CLI and tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from tenant_analytics.errors import InvalidQuery

Granularity = Literal["10s", "minute", "hour", "day", "week", "month"]
Operator = Literal["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "is_null"]
# Strict: what the OpenAPI document says is what is accepted (no "1" for 1). A dimension holds text or integers
# (the catalog says which); the planner checks each value against its dimension.
FilterValue = StrictStr | StrictInt
MAX_LIMIT = 10_000
MAX_FILTER_VALUES = 1000  # values of one filter (each is a bound parameter)
MAX_MEMBERS = 32  # measures, dimensions, filters or orderings of one query
# Time bounds of a query: wide enough for any data, narrow enough that bucket arithmetic never leaves the calendar.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


class TimeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    dimension: StrictStr
    granularity: Granularity | None = None
    from_: datetime | None = Field(default=None, alias="from")
    to: datetime | None = None

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        if value is not None and not isinstance(value, str):
            raise ValueError("must be an ISO-8601 string, e.g. 2026-01-01T00:00:00Z")
        return value

    @field_validator("from_", "to")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return value
        if value.tzinfo is None:
            raise ValueError("must carry a time zone, e.g. 2026-01-01T00:00:00Z")
        try:
            in_range = EARLIEST <= value.astimezone(UTC) < LATEST
        except OverflowError:  # the offset moves it past year 1 or 9999
            in_range = False
        if not in_range:
            raise ValueError(
                f"must be from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d} (UTC), got {value.isoformat()}"
            )
        return value


class Filter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dimension: StrictStr
    op: Operator
    values: list[FilterValue] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: StrictStr
    desc: StrictBool = False


class Query(BaseModel):
    """A semantic query. The tenant is never part of it: it comes from the credential."""

    model_config = ConfigDict(extra="forbid")

    dataset: StrictStr
    measures: list[StrictStr] = Field(min_length=1, max_length=MAX_MEMBERS)
    dimensions: list[StrictStr] = Field(default_factory=list, max_length=MAX_MEMBERS)
    time: TimeSpec | None = None
    filters: list[Filter] = Field(default_factory=list, max_length=MAX_MEMBERS)
    order: list[Order] = Field(default_factory=list, max_length=MAX_MEMBERS)
    limit: StrictInt = Field(default=1000, ge=1, le=MAX_LIMIT)

    def normalized(self) -> str:
        """Canonical JSON of the query (the cache key's query part)."""
        return self.model_dump_json(by_alias=True, exclude_defaults=False)


class Freshness(BaseModel):
    loaded_through: datetime | None
    lag_seconds: int | None
    data_version_age_ms: int = Field(
        default=0,
        ge=0,
        description="how long before this answer the tenant's data_version was read from the registry"
        " (0: read for this request; never more than the deployment's DATA_VERSION_MAX_AGE_MS)",
    )


class Answer(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    answered_by: str
    data_version: int
    freshness: Freshness
    cache: Literal["hit", "miss"]


_UNION_MEMBERS = {"str": "a string", "int": "an integer"}


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path.replace("from_", "from")


class QueryBatch(BaseModel):
    """Several queries of one dashboard, answered concurrently."""

    model_config = ConfigDict(extra="forbid")

    queries: list[Query] = Field(min_length=1, max_length=20)


class BatchAnswer(BaseModel):
    """One entry per query, in order: the answer, or the error of that query alone."""

    answers: list[Answer | ErrorBody]


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


def invalid_query(errors: list[Any], *, strip: tuple[str, ...] = ()) -> InvalidQuery:
    """An InvalidQuery for the first pydantic error, naming the field (``strip`` drops leading loc parts)."""
    err = errors[0]
    loc = tuple(err.get("loc", ()))
    while loc and loc[0] in strip:
        loc = loc[1:]
    if loc and loc[-1] in _UNION_MEMBERS:  # a value of a union: pydantic reports one error per member type
        kinds = [
            _UNION_MEMBERS[e["loc"][-1]]
            for e in errors
            if tuple(e["loc"])[:-1] == tuple(err["loc"])[:-1] and e["loc"][-1] in _UNION_MEMBERS
        ]
        field = _field_path(loc[:-1])
        return InvalidQuery(f"'{field}' must be {' or '.join(kinds)}, got {err.get('input')!r}", field=field)
    field = _field_path(loc)
    if err.get("type") == "json_invalid":  # its loc is the character offset, not a field
        reason = (err.get("ctx") or {}).get("error", err.get("msg", ""))
        at = f" at character {loc[-1]}" if loc and isinstance(loc[-1], int) else ""
        return InvalidQuery(f"the request body is not valid JSON: {reason}{at}", field="")
    if err.get("type") == "extra_forbidden":
        message = f"unknown field '{field}'"
    elif err.get("type") == "literal_error":
        message = f"'{field}' {str(err.get('msg', '')).lower()}, got {err.get('input')!r}"
    elif not field:
        message = f"the request body is not a valid query: {err.get('msg', '')}"
    else:
        message = f"'{field}': {str(err.get('msg', '')).removeprefix('Value error, ')}"
    return InvalidQuery(message, field=field)


def parse_query(document: Any) -> Query:
    """Validate a query document; raise InvalidQuery naming the first bad field and what is allowed."""
    if not isinstance(document, dict):
        raise InvalidQuery("the query must be a JSON object", field="")
    try:
        return Query.model_validate(document)
    except ValidationError as exc:
        raise invalid_query(list(exc.errors())) from exc
