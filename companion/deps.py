"""Owns the companion's FastAPI dependencies: the process state and the admin-key check."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from companion.errors import NotReady, Unauthorized
from companion.state import CompanionState


def get_state(request: Request) -> CompanionState:
    state = getattr(request.app.state, "companion", None)
    if state is None:
        raise NotReady("companion is still loading")
    return state


State = Annotated[CompanionState, Depends(get_state)]


def check_admin_key(state: CompanionState, presented: str | None) -> None:
    """The one place admin access is decided; swap for the gateway's key store when it is shared."""
    expected = state.settings.bootstrap_admin_key.get_secret_value()
    if not presented or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise Unauthorized("admin API key required (X-API-Key)")


def require_admin(state: State, x_api_key: Annotated[str | None, Header()] = None) -> None:
    check_admin_key(state, x_api_key)


Admin = Annotated[None, Depends(require_admin)]
