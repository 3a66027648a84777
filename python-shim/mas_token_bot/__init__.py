"""maubot plugin that manages Matrix Authentication Service registration tokens from a chat room."""

from .bot import MasTokenBot

__all__ = ["MasTokenBot"]
