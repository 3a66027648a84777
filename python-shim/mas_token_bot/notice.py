"""Build the Matrix event content for a reply from the core."""

from __future__ import annotations

import json

from mautrix.types import Format, MessageType, TextMessageEventContent

from .protocol import Reply

# Maximum size of a reply's content as UTF-8 JSON. The Matrix spec limits a
# whole event, content and envelope, to 65,536 bytes, and homeservers reject
# larger events. The envelope (ids, type, timestamps, signatures) gets the rest.
MAX_CONTENT_BYTES = 60_000


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


def content_size(content: TextMessageEventContent) -> int:
    """Return the size in bytes of the content as the homeserver receives it (compact UTF-8 JSON)."""
    return len(json.dumps(content.serialize(), ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def oversized_notice(size: int) -> TextMessageEventContent:
    """Return the notice sent in place of a reply of `size` bytes that no homeserver would accept."""
    message = (
        f"The reply is too large for a Matrix message ({size} bytes, at most {MAX_CONTENT_BYTES}), "
        "so it was not sent. A very long argument can cause this. See the bot's log."
    )
    return build_notice(Reply.plain_error(message))
