"""The messaging service's events: its published API.

Stream ``conversation-<id>``: one buyer-seller conversation, about a proposal
(interviews, questions, negotiation) or a contract (the work room). A
message's number is its event's revision in that stream, so posting needs no
read of earlier messages. Stream ``inbox-<user>``: what a user marked read.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.schemas import ALL, registry

STREAM_CATEGORIES = ("conversation", "inbox")
"""The categories of this service's streams: no other service reads them."""


@registry.event("ConversationStarted", published=ALL)
class ConversationStarted(Schema):
    conversation_id = fields.String(required=True)
    kind = fields.String(
        required=True, validate=validate.OneOf(("proposal", "contract", "invitation"))
    )
    """What the two talk about; ``invitation``: an invitation the seller accepted
    (``ref_id`` is ``domain.invitation_ref`` of the project and the seller)."""
    ref_id = fields.String(required=True)
    project_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    seller_id = fields.String(required=True)


@registry.event("MessagePosted", published=ALL, personal={"text": "sender_id"})
class MessagePosted(Schema):
    message_id = fields.String(required=True)
    sender_id = fields.String(required=True)
    recipient_id = fields.String(required=True)
    """Who may now read the attached files, too."""
    text = fields.String(required=True)
    file_ids = fields.List(fields.String(), load_default=list)


@registry.event("MessagesRead", published=ALL)
class MessagesRead(Schema):
    """A read receipt: ``reader_id`` has read every message up to ``up_to``."""

    reader_id = fields.String(required=True)
    up_to = fields.Integer(required=True)


@registry.event("NotificationsRead", published=ALL)
class NotificationsRead(Schema):
    """The listed notifications, or (``all``) every one up to ``up_to_position``."""

    user_id = fields.String(required=True)
    notification_ids = fields.List(fields.String(), load_default=list)
    all = fields.Boolean(load_default=False)
    up_to_position = fields.Integer(load_default=None, allow_none=True)
