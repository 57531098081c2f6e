"""The bridge's API for the ``muster`` command line and the handhelds.

- ``GET /api/v1/safety-mode`` (any signed-in user): the ship's safety mode and since when;
- ``PUT /api/v1/admin/safety-mode`` (office): start a mode, or end the muster (``null``);
- ``GET /api/v1/reports/{mode}?since=T&format=csv|pdf`` (office): the drill report.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from sync_core.clock import Clock
from sync_core.protocol import API_PREFIX, SafetyMode, SafetyModeChange, ShipSafetyMode
from sync_core.server.safety_mode import ShipMode
from sync_core.server.store import ServerStore
from sync_core.server.tokens import Grant
from sync_core.server.web.routes import report_response

GrantDependency = Callable[..., Awaitable[Grant]]


def bridge_api(
    store: ServerStore, ship_mode: ShipMode, clock: Clock, signed: GrantDependency, office: GrantDependency
) -> APIRouter:
    """The routes above; ``signed`` and ``office`` are the server's bearer-token dependencies."""
    router = APIRouter(prefix=API_PREFIX)

    @router.get("/safety-mode", response_model=ShipSafetyMode)
    async def get_safety_mode(_: Annotated[Grant, Depends(signed)]) -> ShipSafetyMode:
        return ship_mode.current()

    @router.put("/admin/safety-mode", response_model=ShipSafetyMode)
    def put_safety_mode(body: SafetyModeChange, grant: Annotated[Grant, Depends(office)]) -> ShipSafetyMode:
        return ship_mode.set(body.mode, grant.username, clock.now())

    @router.get("/reports/{mode}")
    def get_report(
        mode: SafetyMode,
        _: Annotated[Grant, Depends(office)],
        since: datetime | None = None,
        format: str = Query("csv", pattern="^(csv|pdf)$"),
    ) -> Response:
        return report_response(store, mode, since, format, clock)

    return router
