"""Messaging routes: conversations and their messages, notifications, and the
live notification stream (server-sent events)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Generator, Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import eventlet
import orjson
from werkzeug.wrappers import Request, Response

from gateway.endpoint import endpoint
from gateway.routes.base import RoutesBase, read_when_visible
from gateway.sessions import refuse_ended
from gateway.stream_tickets import TICKET_SECONDS, StreamQuery, TicketResponse
from services.messaging import api as messaging_api
from services.messaging import views as messaging_views
from shared.config import settings
from shared.errors import (
    ServiceError,
    SessionEnded,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)
from shared.jsonready import json_ready
from shared.logging import get_logger

log = get_logger(__name__)

STREAM_POLL_SECONDS = 0.5
SESSION_CHECK_SECONDS = 2.0
STREAMS_PER_USER = 5
KEEPALIVE_SECONDS = 2.0
"""An idle stream writes a comment this often. A stream whose browser went away
(a reload, a closed tab) counts against ``STREAMS_PER_USER`` until a write to
it fails, so this is also how soon a reload's old stream stops counting."""
"""Open streams one user may hold on one gateway process (tabs, devices)."""
_open_streams: Counter[str] = Counter()


class BadLastEventId(ServiceError):
    status = 400
    code = "bad_request"


class LiveNotifications:
    """The body of one stream: counted among its user's open streams from the
    moment it is made until the server closes it (whether or not it ever ran)."""

    def __init__(
        self, views: Any, user_id: str, position: int, lifetime: float, alive: Any
    ) -> None:
        self.user_id = user_id
        self.events = _events(views, user_id, position, time.monotonic() + lifetime, alive)
        self.closed = False
        _open_streams[user_id] += 1

    def __iter__(self) -> Iterator[bytes]:
        return self.events

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.events.close()
        _open_streams[self.user_id] -= 1
        if _open_streams[self.user_id] <= 0:
            del _open_streams[self.user_id]


def _events(
    views: Any, user_id: str, position: int, deadline: float, alive: Any
) -> Generator[bytes, None, None]:
    """Server-sent events from the gateway's own inbox view: a green thread per
    connection polls one indexed query; a comment every 15 s keeps proxies from
    closing an idle stream. Each event's id is its log position, which the
    browser sends back as Last-Event-ID when it reconnects. A stream lasts no
    longer than an access token, and ends within ``SESSION_CHECK_SECONDS`` of
    its session ending (``alive``); the browser then reconnects with a new
    ticket, so a stream never outlives the right to open one."""
    yield b"retry: 2000\n\n"
    idle, checked = 0.0, time.monotonic()
    while time.monotonic() < deadline:
        if time.monotonic() - checked >= SESSION_CHECK_SECONDS:
            checked = time.monotonic()
            if not alive():
                return
        try:
            with views.connect() as conn:
                fresh = messaging_views.notifications_after(conn, user_id, position)
        except Exception:
            # The client reconnects after `retry` with Last-Event-ID: nothing is missed.
            log.warning("notification stream ended", exc_info=True)
            return
        for item in fresh:
            position = max(position, item["position"])
            yield b"id: %d\nevent: notification\ndata: %s\n\n" % (
                item["position"],
                orjson.dumps(item),
            )
        idle = 0.0 if fresh else idle + STREAM_POLL_SECONDS
        if idle >= KEEPALIVE_SECONDS:
            idle = 0.0
            yield b": keep-alive\n\n"
        eventlet.sleep(STREAM_POLL_SECONDS)


class MessagingRoutes(RoutesBase):
    """Conversations are for their participants; notifications for their user."""

    # -- conversations ------------------------------------------------------------

    @endpoint(
        "POST",
        "/conversations",
        summary="Start (or find) the conversation about a proposal or a contract",
        tags=("messages",),
        body=messaging_api.StartConversationRequest,
        response=messaging_api.ConversationResponse,
        errors=(404,),
        reads=("contract_views", "messaging_views", "proposal_views"),
    )
    def start_conversation(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("proposal_id"):
            self._known_proposal(str(body["proposal_id"]))
        else:
            self._known_contract(str(body["contract_id"]))
        started = self.messaging.start_conversation(json_ready(body))
        conversation_id = started["conversation_id"]
        return read_when_visible(
            self.messaging_views,
            lambda conn: messaging_views.get_conversation(conn, conversation_id, self._me()),
        )

    @endpoint(
        "GET",
        "/me/conversations",
        summary="Your conversations, with unread counts",
        tags=("messages",),
        response=messaging_api.ConversationList,
        reads=("messaging_views",),
    )
    def my_conversations(self, request: Request) -> dict[str, Any]:
        with self.messaging_views.connect() as conn:
            return messaging_views.list_conversations(conn, self._me())

    @endpoint(
        "GET",
        "/conversations/<conversation_id>",
        summary="A conversation, with read receipts (its participants only)",
        tags=("messages",),
        response=messaging_api.ConversationResponse,
        errors=(404,),
        reads=("messaging_views",),
    )
    def get_conversation(self, request: Request, conversation_id: str) -> dict[str, Any]:
        with self.messaging_views.connect() as conn:
            return messaging_views.get_conversation(conn, conversation_id, self._me())

    @endpoint(
        "GET",
        "/conversations/<conversation_id>/messages",
        summary="Messages, newest first (order=desc) or oldest first (order=asc)",
        tags=("messages",),
        query=messaging_api.MessagesQuery,
        response=messaging_api.MessagePage,
        errors=(404,),
        cached=True,
        reads=("messaging_views",),
    )
    def list_messages(
        self, request: Request, conversation_id: str, query: dict[str, Any]
    ) -> dict[str, Any]:
        with self.messaging_views.connect() as conn:
            messaging_views.get_conversation(conn, conversation_id, self._me())
            return messaging_views.list_messages(
                conn, conversation_id, query["order"], query["limit"], query["cursor"]
            )

    @endpoint(
        "POST",
        "/conversations/<conversation_id>/messages",
        summary="Send a message (text and/or your own files)",
        tags=("messages",),
        body=messaging_api.PostMessageRequest,
        response=messaging_api.MessageResponse,
        status=201,
        location="/conversations/{conversation_id}/messages",
        errors=(404,),
        reads=("profiles",),
    )
    def post_message(
        self, request: Request, conversation_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self._own_files(body["file_ids"], "message")
        posted = self.messaging.post_message(conversation_id, json_ready(body))
        return {
            "seq": posted["seq"],
            "message_id": posted["message_id"],
            "sender_id": self._me(),
            "text": body["text"],
            "file_ids": [str(f) for f in body["file_ids"]],
            "sent_at": json_ready(datetime.now(UTC)),
        }

    @endpoint(
        "POST",
        "/conversations/<conversation_id>/read",
        summary="A read receipt: you have read up to this message",
        tags=("messages",),
        body=messaging_api.ReadRequest,
        response=messaging_api.MarkedResponse,
        errors=(404, 409),
    )
    def mark_read(
        self, request: Request, conversation_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.messaging.mark_read(conversation_id, body["up_to"])

    # -- notifications --------------------------------------------------------------

    @endpoint(
        "GET",
        "/me/notifications",
        summary="Your notifications, newest first (unread=true for unread only)",
        tags=("notifications",),
        query=messaging_api.NotificationsQuery,
        response=messaging_api.NotificationPage,
        reads=("notification_views",),
    )
    def my_notifications(self, request: Request, query: dict[str, Any]) -> dict[str, Any]:
        with self.notification_views.connect() as conn:
            return messaging_views.list_notifications(
                conn, self._me(), query["unread"], query["limit"], query["cursor"]
            )

    @endpoint(
        "POST",
        "/me/notifications/read",
        summary="Mark notifications read: the listed ones, or all",
        tags=("notifications",),
        body=messaging_api.MarkNotificationsRequest,
        response=messaging_api.MarkedResponse,
        reads=("notification_views",),
    )
    def mark_notifications(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        up_to = None
        if body["all"]:
            with self.notification_views.connect() as conn:
                up_to = messaging_views.latest_position(conn, self._me())
        return self.messaging.mark_notifications_read(json_ready(body), up_to)

    @endpoint(
        "POST",
        "/me/notifications/stream-ticket",
        summary="A single-use ticket (30 s) to open the live stream from a browser",
        tags=("notifications",),
        response=TicketResponse,
        idempotent=False,
    )
    def stream_ticket(self, request: Request) -> dict[str, Any]:
        assert self.scope.principal is not None
        return {"ticket": self.tickets.issue(self.scope.principal), "expires_in": TICKET_SECONDS}

    @endpoint(
        "GET",
        "/me/notifications/stream",
        summary="Live notifications as server-sent events (resume with Last-Event-ID)",
        tags=("notifications",),
        auth="optional",
        query=StreamQuery,
        errors=(400, 401, 429),
        reads=("notification_views", "session_views"),
    )
    def notification_stream(self, request: Request, query: dict[str, Any]) -> Response:
        """Authenticated by the usual header, or (from a browser's EventSource,
        which cannot send one) by ``?ticket=`` from the stream-ticket route."""
        if self.scope.principal is None:
            if not query["ticket"]:
                raise Unauthorized("send 'Authorization: Bearer <token>' or ?ticket=")
            redeemed = self.tickets.redeem(query["ticket"])
            refuse_ended(self, redeemed)  # logged out since the ticket was made
            self.scope.act_as(redeemed)
        user = self._me()
        last = request.headers.get("Last-Event-ID", "")
        if last and not (last.isascii() and last.isdigit() and len(last) <= 20):
            raise BadLastEventId("Last-Event-ID must be the id of an event this stream sent")
        if _open_streams[user] >= STREAMS_PER_USER:
            raise TooManyRequests(
                f"at most {STREAMS_PER_USER} live streams at once; close one",
                {"retry_after": 5},
            )
        # eventlet's server buffers 4 KB before writing; an event must go out at once.
        request.environ["eventlet.minimum_write_chunk_size"] = 0
        with self.notification_views.connect() as conn:
            position = int(last) if last else messaging_views.latest_position(conn, user)
        principal = self.scope.principal
        assert principal is not None
        lifetime = float(settings().access_token_ttl)
        if principal.issued_at:
            lifetime = min(lifetime, principal.issued_at + lifetime - time.time())
        sessions = SimpleNamespace(session_views=self.session_views)

        def alive() -> bool:
            try:
                refuse_ended(sessions, principal)
            except SessionEnded:
                return False
            except Unavailable:
                pass  # the view lags: the stream's lifetime still bounds it
            return True

        body = LiveNotifications(self.notification_views, user, position, lifetime, alive)
        return Response(
            body,
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
