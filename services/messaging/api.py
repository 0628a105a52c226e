"""The messaging service's published API: request and response schemas."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared.api import Strict
from shared.pagination import PageQuery


class StartConversationRequest(Strict):
    """Exactly one of ``proposal_id`` (before hiring) or ``contract_id`` (the work room)."""

    proposal_id = fields.UUID(load_default=None)
    contract_id = fields.UUID(load_default=None)

    @validates_schema
    def one_subject(self, data: dict, **kwargs: object) -> None:
        if (data["proposal_id"] is None) == (data["contract_id"] is None):
            raise ValidationError("Name a proposal_id or a contract_id.", "_schema")


class PostMessageRequest(Strict):
    text = fields.String(load_default="", validate=validate.Length(max=10_000))
    file_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=10))


class ReadRequest(Strict):
    up_to = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class MessagesQuery(PageQuery):
    order = fields.String(load_default="desc", validate=validate.OneOf(("asc", "desc")))


class NotificationsQuery(PageQuery):
    unread = fields.Boolean(load_default=False)


class MarkNotificationsRequest(Strict):
    """Either the listed notifications, or ``all`` of them."""

    notification_ids = fields.List(
        fields.UUID(), load_default=list, validate=validate.Length(max=500)
    )
    all = fields.Boolean(load_default=False)


class ConversationResponse(Schema):
    conversation_id = fields.String(required=True)
    kind = fields.String(required=True)
    ref_id = fields.String(required=True)
    project_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    seller_id = fields.String(required=True)
    last_seq = fields.Integer(required=True)
    unread = fields.Integer(required=True)
    read_by_you = fields.Integer(required=True)
    read_by_other = fields.Integer(
        required=True, metadata={"description": "The other party has read up to this message"}
    )
    last_message_at = fields.String(allow_none=True)


class ConversationList(Schema):
    items = fields.List(fields.Nested(ConversationResponse), required=True)
    total_unread = fields.Integer(required=True)


class MessageResponse(Schema):
    seq = fields.Integer(required=True)
    message_id = fields.String(required=True)
    sender_id = fields.String(required=True)
    text = fields.String(required=True)
    file_ids = fields.List(fields.String(), required=True)
    sent_at = fields.String(required=True)


class MessagePage(Schema):
    items = fields.List(fields.Nested(MessageResponse), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class NotificationLink(Schema):
    type = fields.String(required=True)
    id = fields.String(allow_none=True)
    milestone_id = fields.String(allow_none=True)


class NotificationResponse(Schema):
    notification_id = fields.String(required=True)
    kind = fields.String(required=True)
    title = fields.String(required=True)
    link = fields.Nested(NotificationLink, required=True)
    read = fields.Boolean(required=True)
    at = fields.String(required=True)
    position = fields.Integer(required=True)


class NotificationPage(Schema):
    items = fields.List(fields.Nested(NotificationResponse), required=True)
    unread = fields.Integer(required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class MarkedResponse(Schema):
    marked = fields.Boolean(required=True)
