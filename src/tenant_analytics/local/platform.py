"""LocalPlatform: the whole platform on one machine (embedded PostgreSQL, moto, local Spark), for the CLI,
the demo and the end-to-end tests. It drives the same artefacts `cdk deploy` ships."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

from botocore.exceptions import ClientError

from tenant_analytics import constants as c
from tenant_analytics.cdc import runtime as cdc_runtime
from tenant_analytics.errors import InvalidInput, TenantAnalyticsError
from tenant_analytics.local.api import ApiResponse, LocalApiGateway
from tenant_analytics.local.aws import LocalAws, local_aws
from tenant_analytics.local.home_lock import hold_home
from tenant_analytics.local.postgres import admin_url, ensure_database, query_login_url
from tenant_analytics.models import RefreshRecord
from tenant_analytics.pipeline import runtime
from tenant_analytics.pipeline.plan import last_complete_hour, parse_hour
from tenant_analytics.pipeline.refresh import export_operational
from tenant_analytics.pipeline.start import execution_name
from tenant_analytics.query import runtime as query_runtime
from tenant_analytics.query.auth import DevSigner
from tenant_analytics.query.contract import Answer, parse_query
from tenant_analytics.settings import database_url, get_settings
from tenant_analytics.sources.messaging import MessagingBatch
from tenant_analytics.stores.factory import open_store
from tenant_analytics.stores.messaging import MessagingMergeStats
from tenant_analytics.stores.postgres import PostgresStore
from tenant_analytics.stores.setup import set_up_stores
from tenant_analytics.tenants.models import Tenant, Tier
from tenant_analytics.tenants.registry import TenantRegistry

LOCAL_STORES = {"aurora-1": "aurora", "redshift-1": "redshift"}


@dataclass(frozen=True)
class MessagingLanding:
    """What landing one messaging batch did: the merge, and each model's refresh."""

    stats: MessagingMergeStats
    refreshed: list[RefreshRecord]


@dataclass
class LocalPlatform:
    """Operations a user performs, run against the local account."""

    home: Path
    aws: LocalAws
    signer: DevSigner

    @property
    def registry(self) -> TenantRegistry:
        return runtime.registry()

    def add_tenant(
        self,
        tenant_id: str,
        source_url: str,
        *,
        tier: Tier | None = None,
        since: datetime | None = None,
        credentials_secret: str | None = None,
    ) -> Tenant:
        return self.registry.add(tenant_id, source_url, tier=tier, since=since, credentials_secret=credentials_secret)

    def run_hour(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Execute the hourly state machine once (the real ASL) and return its description, output parsed."""
        payload = payload or {}
        try:
            hour = parse_hour(payload["hour"], datetime.now(UTC)) if "hour" in payload else None
        except TenantAnalyticsError:
            hour = None  # the state machine itself rejects the input, with its own message
        hour = hour or last_complete_hour(datetime.now(UTC))
        for attempt in range(1, 100):
            name = execution_name(hour, attempt)  # a re-run of the same hour gets the next free suffix
            try:
                desc = self.aws.run_state_machine(name, payload)
                break
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
                    raise
        else:
            raise RuntimeError("could not find a free execution name")
        if "output" in desc:
            desc["output"] = json.loads(desc["output"])
        return desc

    def land_messaging(self, tenant_id: str, batch: MessagingBatch) -> MessagingLanding:
        """Land a tenant's messaging batch in its store, refresh the models for it, publish (data_version + 1)."""
        tenant = self.registry.get(tenant_id)
        store = runtime.store_opener()(tenant.store)
        if not isinstance(store, PostgresStore):
            raise InvalidInput(f"local messaging landing needs a PostgreSQL store; '{tenant.store}' is not one")
        stats = store.land_messaging(tenant_id, batch)
        refreshed = store.refresh_models([tenant_id])
        if tenant.tier is Tier.REDSHIFT:
            exported = export_operational(tenant.store, [tenant_id], runtime.store_opener())
            if exported.store_errors:
                raise InvalidInput(f"operational export of '{tenant_id}' failed: {exported.store_errors}")
        self.registry.record_load(tenant_id, size_rows=tenant.size_rows, loaded_through=batch.arrived_to)
        return MessagingLanding(stats=stats, refreshed=refreshed)

    def query(self, tenant_id: str, document: Any) -> Answer:
        """Answer a query for ``tenant_id`` through the same service the query Lambda uses."""
        return query_runtime.query_service().answer(tenant_id, parse_query(document))

    def token(self, tenant_id: str, ttl_seconds: int = 3600) -> str:
        return self.signer.sign(tenant_id, ttl_seconds=ttl_seconds)

    def call_api(
        self,
        tenant_id: str,
        method: str,
        path: str,
        *,
        body: object | None = None,
        query: dict[str, str] | None = None,
        gateway: LocalApiGateway | None = None,
    ) -> ApiResponse:
        """Call the local API as ``tenant_id`` would: a token of its own, a JSON body, authorizer then handler."""
        headers = {"Authorization": f"Bearer {self.token(tenant_id)}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return (gateway or LocalApiGateway()).handle(
            method,
            path,
            headers,
            json.dumps(body) if body is not None else None,
            {k: [v] for k, v in query.items()} if query else None,
        )


@contextmanager
def local_platform(
    home: Path, *, persist: bool = True, db_prefix: str | None = None, pg_admin: str | None = None
) -> Iterator[LocalPlatform]:
    """Start the local platform under ``home`` (state saved there on exit when ``persist``).

    With ``persist`` the home is held exclusively, else shared (see ``home_lock``): InvalidInput, naming the other
    process, when it cannot be.

    ``pg_admin`` is a superuser URL of the PostgreSQL to use; by default $DATABASE_URL or the embedded server.
    Store databases are named ``<db_prefix>_<store>``; by default the prefix is derived from ``home``, so two
    homes on one server never share a store.
    """
    with hold_home(home, exclusive=persist), _platform(home, persist, db_prefix, pg_admin) as platform:
        yield platform


@contextmanager
def _platform(home: Path, persist: bool, db_prefix: str | None, pg_admin: str | None) -> Iterator[LocalPlatform]:
    admin = pg_admin or admin_url(home, database_url())
    if db_prefix is None:
        db_prefix = "ta_" + hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:8]
    dsns = {
        store_id: (tier, ensure_database(admin, f"{db_prefix}_{store_id.replace('-', '_')}"))
        for store_id, tier in LOCAL_STORES.items()
    }
    # Tenant queries log in as the query login, as on AWS, where the server lets it in without a password (the
    # embedded one does); elsewhere they run as the writers' user, inside SET LOCAL ROLE ta_query all the same.
    logins = {store_id: query_login_url(dsn) for store_id, (_, dsn) in dsns.items()}
    query_dsns = {store_id: url for store_id, url in logins.items() if url is not None}
    settings = get_settings()
    signer = DevSigner(home / "dev-signing-key.pem", issuer=settings.auth_issuer, audience=settings.auth_audience)
    with mock.patch.dict(os.environ, {c.ENV_AUTH_JWKS: json.dumps(signer.jwks())}):
        get_settings.cache_clear()
        query_runtime.reset()
        try:
            with local_aws(home, dsns, persist=persist, query_dsns=query_dsns) as aws:
                # As the deployment's setup does: the stores' tables, the realtime bins and the login tenant
                # queries use exist before any query (the query path creates nothing).
                set_up_stores(
                    sorted(dsns),
                    lambda store_id: open_store(store_id, get_settings()),
                    also={"realtime bins": cdc_runtime.realtime_store},
                )
                yield LocalPlatform(home=home, aws=aws, signer=signer)
        finally:
            query_runtime.reset()
            get_settings.cache_clear()
