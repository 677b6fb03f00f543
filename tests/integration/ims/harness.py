"""Start an IMS core and user agents on loopback for the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ims.call import CallHooks
from ims.proxy import CoreConfig, ImsCore
from ims.sip.transaction import Target, Timers
from ims.ua import UserAgent

FAST = Timers(t1=0.05, t2=0.4, t4=0.2, d=0.3)
DOMAIN = "ims.test"


@asynccontextmanager
async def core_running(
    hooks: list[CallHooks] | None = None, **kwargs: object
) -> AsyncIterator[ImsCore]:
    core = ImsCore(CoreConfig(domain=DOMAIN, host="127.0.0.1", port=0), hooks, FAST, **kwargs)  # type: ignore[arg-type]
    await core.start()
    try:
        yield core
    finally:
        await core.close()


@asynccontextmanager
async def ua_running(
    core: ImsCore,
    user: str,
    ip: str = "127.0.0.1",
    transport: str = "UDP",
    register: bool = True,
    **kwargs: object,
) -> AsyncIterator[UserAgent]:
    ua = UserAgent(
        user,
        Target(transport, "127.0.0.1", core.port),
        DOMAIN,
        ip=ip,
        transport=transport,
        timers=FAST,
        **kwargs,
    )  # type: ignore[arg-type]
    await ua.start()
    try:
        if register:
            assert (await ua.register()).status == 200
        yield ua
    finally:
        await ua.close()
