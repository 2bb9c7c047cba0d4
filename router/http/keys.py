"""Typed keys for what the app and each request carry."""

from aiohttp import web

from router.accounting.stage import Accounting
from router.pipeline.sequence import Pipeline
from router.serving import RouterState
from router.tenancy.auth import Principal
from router.types import RequestOutcome

STATE = web.AppKey("router_state", RouterState)
PIPELINE = web.AppKey("router_pipeline", Pipeline)
ACCOUNTING = web.AppKey("router_accounting", Accounting)  # the pipeline's; the ledger flush and usage read it
OUTCOME = web.RequestKey("router_outcome", RequestOutcome)
PRINCIPAL = web.RequestKey("router_principal", Principal)
# True on the admin listener's app (ROUTER_ADMIN_PORT): its callers are operators.
ADMIN_LISTENER = web.AppKey("router_admin_listener", bool)
