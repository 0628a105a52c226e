"""Access tokens stop when their session ends: the gateway's check of every
authenticated request against the sessions identity has ended.

A logout, "log out everywhere", a password change or reset, or a reused
refresh token ends sessions in identity's log (``SessionRevoked``,
``SessionsEnded``, both published). The gateway keeps them in its own view
(``services.identity.views.SessionsView``) and refuses the access tokens of
an ended session with 401 ``session_ended``, though they have not expired.

**How stale the view may be.** Each gateway process compares, at most every
``PROBE_SECONDS``, the view's checkpoint with the newest such event in the
log. While the view is behind the log for more than ``MAX_LAG_SECONDS``
(the runner stopped, the database away), authenticated requests are answered
503 instead of being let through on a view that may miss a logout. So a
session ended at time T is refused by every gateway process from T + 6 s at
the latest (``MAX_LAG_SECONDS`` + ``PROBE_SECONDS``), normally within the
milliseconds the view takes to follow the log; and the gateway that handled
a logout answers it only once its view shows the session ended, so the
client's next request there is refused at once.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from cachetools import LRUCache

from services.identity import views as identity_views
from shared.auth import Principal
from shared.errors import SessionEnded, Unavailable
from shared.logging import get_logger
from shared.projection import ProjectionHandle, ProjectionRunner

log = get_logger(__name__)

MAX_LAG_SECONDS = 5.0
PROBE_SECONDS = 1.0
KNOWN_TOKENS = 50_000


class SessionGate:
    """One process's check of tokens against one sessions view."""

    def __init__(self) -> None:
        self.probed_at = float("-inf")
        self.fresh_at: float | None = None
        self.checkpoint: int | None = None
        self.position: int | None = None
        # (session, issue time) -> ended, while the view stands still
        self.known: LRUCache[tuple[str, float], bool] = LRUCache(KNOWN_TOKENS)
        self._probing = threading.Lock()

    def check(self, handle: ProjectionHandle, principal: Principal) -> None:
        self._probe_if_due(handle)
        if self._stale(time.monotonic()):
            raise Unavailable(
                "sessions cannot be checked right now; retry in a moment",
                {"reason": "sessions_view_behind", "retry_after": 1},
            )
        position = handle.live_position
        if position is not None and position != self.position:
            self.known.clear()  # this process applied a newer ending
            self.position = position
        key = (principal.session_id, principal.issued_at)
        ended = self.known.get(key)
        if ended is None:
            with handle.connect() as conn:
                ended = identity_views.session_ended(
                    conn, principal.user_id, principal.session_id, principal.issued_at
                )
            self.known[key] = ended
        if ended:
            raise SessionEnded("this session has ended; log in again", {"reason": "session_ended"})

    def _probe_if_due(self, handle: ProjectionHandle) -> None:
        """One probe at a time. A request that comes meanwhile goes on at once
        if the last answer still holds, and waits for this one if it does not:
        judged on the stale answer, a burst after a quiet spell was all 503s
        but the request that probed."""
        if time.monotonic() - self.probed_at < PROBE_SECONDS and not self._probing.locked():
            return
        if not self._probing.acquire(blocking=self._stale(time.monotonic())):
            return
        try:
            if time.monotonic() - self.probed_at >= PROBE_SECONDS:
                self._probe(handle, time.monotonic())
        finally:
            self._probing.release()

    def _stale(self, now: float) -> bool:
        return self.fresh_at is None or now - self.fresh_at > MAX_LAG_SECONDS

    def forget(self) -> None:
        """The view just moved (a logout this process handled)."""
        self.known.clear()

    def _probe(self, handle: ProjectionHandle, now: float) -> None:
        self.probed_at = now
        try:
            checkpoint = handle.runner.checkpoint()
            newest = next(
                iter(
                    handle.runner.store.read_all(
                        backwards=True,
                        limit=1,
                        categories=identity_views.SessionsView.categories,
                        event_types=identity_views.SESSION_EVENTS,
                    )
                ),
                None,
            )
        except Exception as exc:  # the database or the store is away: stale from now on
            log.warning("sessions view not checked", error=repr(exc)[:200])
            return
        if checkpoint != self.checkpoint:
            self.known.clear()
            self.checkpoint = checkpoint
        if newest is None or (checkpoint is not None and checkpoint >= newest.position):
            self.fresh_at = now


_gates: weakref.WeakKeyDictionary[ProjectionRunner, SessionGate] = weakref.WeakKeyDictionary()


def gate(handle: ProjectionHandle) -> SessionGate:
    found = _gates.get(handle.runner)
    if found is None:
        found = _gates[handle.runner] = SessionGate()
    return found


def refuse_ended(service: Any, principal: Principal) -> None:
    """Raise SessionEnded if ``principal``'s session has ended (the gateway's
    ``session_views``)."""
    gate(service.session_views).check(service.session_views, principal)
