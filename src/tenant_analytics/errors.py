"""Domain exceptions. Each message says what was wrong and what is allowed; `http_status` maps it for the API."""

from __future__ import annotations


class TenantAnalyticsError(Exception):
    """Base of every error the platform raises on purpose."""

    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, object]:
        """Return the API error body of DESIGN.md section 7."""
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return {"error": body}


class InvalidInput(TenantAnalyticsError):
    """The caller sent something the platform does not accept."""

    code = "invalid_input"
    http_status = 400


class InvalidQuery(InvalidInput):
    """A semantic query names something unknown or asks for something not allowed."""

    code = "invalid_query"


class UnknownTenant(TenantAnalyticsError):
    """No tenant with this id is registered."""

    code = "unknown_tenant"
    http_status = 404

    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"tenant '{tenant_id}' is not registered")
        self.tenant_id = tenant_id


class TenantExists(TenantAnalyticsError):
    code = "tenant_exists"
    http_status = 409


class TenantNotActive(TenantAnalyticsError):
    code = "tenant_not_active"
    http_status = 409


class NoCapacity(TenantAnalyticsError):
    """No store can take another tenant within its budget."""

    code = "no_capacity"
    http_status = 503


class Unauthorized(TenantAnalyticsError):
    code = "unauthorized"
    http_status = 401


class Forbidden(TenantAnalyticsError):
    code = "forbidden"
    http_status = 403


class TenantSuspended(Forbidden):
    """The tenant is registered but suspended: none of its data is served until it is active again."""

    code = "tenant_suspended"

    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"tenant '{tenant_id}' is suspended: its data is not served until it is reactivated")


class SourceError(TenantAnalyticsError):
    """A tenant's source API could not be read; nothing from the failing page was landed."""

    code = "source_error"
    http_status = 502


class SourceUnreachable(SourceError):
    code = "source_unreachable"


class MalformedPage(SourceError):
    code = "malformed_page"


class StoreUnavailable(TenantAnalyticsError):
    """The tenant's store could not be reached; safe to retry."""

    code = "store_unavailable"
    http_status = 503


class StoreNotReady(StoreUnavailable):
    """The store has not been set up yet: its tables are created by the first load or model refresh that opens it."""

    code = "store_not_ready"


class StoreMisconfigured(TenantAnalyticsError):
    """A store is set up in a way the platform refuses to run with (retrying does not help)."""

    code = "store_misconfigured"


class TransformFailed(TenantAnalyticsError):
    code = "transform_failed"


def one_line(exc: Exception) -> str:
    """What went wrong, in one line: a platform error's message, else the first line of the exception's text
    (a database error carries its context on further lines)."""
    if isinstance(exc, TenantAnalyticsError):
        return exc.message
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
