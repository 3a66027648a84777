"""The plugin's config: the keys of base-config.yaml, passed to the core as JSON."""

from __future__ import annotations

import math
from typing import Any

from mautrix.util.config import BaseProxyConfig, ConfigUpdateHelper

# Every key of base-config.yaml, in file order.
CONFIG_KEYS = (
    "mas_url",
    "admin_api",
    "token_url",
    "client_id",
    "client_secret",
    "token_scope",
    "default_uses_allowed",
    "default_expiry_time",
    "base_command",
    "whitelist",
    "room_whitelist",
    "http_timeout",
)


class Config(BaseProxyConfig):
    """The instance config, completed with base-config.yaml's defaults."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unknown_keys: list[str] = []

    def do_update(self, helper: ConfigUpdateHelper) -> None:
        # self._data is the instance config as loaded, before the defaults.
        loaded = self._data if isinstance(self._data, dict) else {}

        for key in CONFIG_KEYS:
            if key not in loaded:
                continue

            # helper.copy skips keys whose value is null, but null is a real
            # setting here (unlimited uses, no expiry), so set it directly.
            if loaded[key] is None:
                helper.base[key] = None
            else:
                helper.copy(key)

        self.unknown_keys = sorted(str(key) for key in loaded if key not in CONFIG_KEYS)

    def to_core_json(self) -> dict[str, Any]:
        """Return the config as plain JSON values; Core.configure hides the secret from the core."""
        return {key: _plain(self[key]) for key in CONFIG_KEYS}


def _plain(value: Any) -> Any:
    # ruamel.yaml returns CommentedMap and CommentedSeq and may parse dates. The
    # core reads JSON only, so convert the containers and stringify other values.
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        # JSON has no NaN or infinity; as a string the core names the key.
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
