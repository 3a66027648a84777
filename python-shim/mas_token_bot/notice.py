"""Build the Matrix event content for a reply from the core."""

from __future__ import annotations

from mautrix.types import Format, MessageType, TextMessageEventContent

from .protocol import Reply


def build_notice(reply: Reply) -> TextMessageEventContent:
    """Return an m.notice with the reply's HTML and an empty `m.mentions`.

    The empty `m.mentions` object tells clients that support intentional
    mentions (Matrix spec v1.7) that the message mentions no user or room,
    even though token listings may contain user IDs.
    """
    content = TextMessageEventContent(
        msgtype=MessageType.NOTICE,
        body=reply.body,
        format=Format.HTML,
        formatted_body=reply.html,
    )
    content["m.mentions"] = {}
    return content
