"""Admin API handlers for /api/admin/v1/user-registration-tokens.

Checks run in the order of MAS's extractors: route and method, then the
Authorization header, then the ULID in the path, then the query or the JSON
body, and only then the handler's own lookups.
"""

import urllib.parse

from aiohttp import web

from . import ulids
from .clock import Clock, format_rfc3339, truncate_to_us
from .errors import errors_response, json_response, method_not_allowed, not_found_page, text_response
from .jsonbody import ADD_TOKEN_REQUEST, EDIT_TOKEN_REQUEST, BodyError, is_json_content_type, parse_body
from .listing import FilteredIds, QueryError, build_list_response, parse_list_query
from .oauth import OAuthServer
from .tokens import COLLECTION_PATH, RegistrationToken, TokenStore, generate_token_string

_ALLOW_COLLECTION = "GET,HEAD,POST"
_ALLOW_ITEM = "GET,HEAD,PUT"
_ALLOW_ACTION = "POST"


def _single_response(status: int, token: RegistrationToken, now_ns: int, self_link: str, overrides=None):
    payload = {"data": token.resource(now_ns, overrides), "links": {"self": self_link}}
    return json_response(status, payload)


def _not_found(token_id: str) -> web.Response:
    return errors_response(404, [f"Registration token with ID {token_id} not found"])


class AdminApi:
    def __init__(self, store: TokenStore, oauth: OAuthServer, clock: Clock, ulid_source) -> None:
        self.store = store
        self.oauth = oauth
        self.clock = clock
        self.ulid_source = ulid_source
        self.filtered = FilteredIds(store)

    def route(self, path: str) -> tuple[str, str | None, str] | None:
        """Match a raw path to (operation, raw id, Allow header), or None for a 404."""
        if path == COLLECTION_PATH:
            return "collection", None, _ALLOW_COLLECTION
        prefix = COLLECTION_PATH + "/"
        if not path.startswith(prefix):
            return None

        segments = path[len(prefix):].split("/")
        if len(segments) == 1 and segments[0]:
            return "item", segments[0], _ALLOW_ITEM
        if len(segments) == 2 and segments[0] and segments[1] in ("revoke", "unrevoke"):
            return segments[1], segments[0], _ALLOW_ACTION
        return None

    async def handle(self, request: web.Request, path: str, target: str, body: bytes) -> web.Response:
        matched = self.route(path)
        if matched is None:
            return not_found_page(request.method, target)
        operation, raw_id, allow = matched

        method = request.method
        if method not in allow.split(","):
            return method_not_allowed(allow)

        failure = self.oauth.authorize_admin(request.headers.get("Authorization"))
        if failure is not None:
            return errors_response(*failure)

        if operation == "collection":
            if method == "POST":
                return self._add(request, body)
            return self._list(request)

        try:
            token_id = ulids.canonical(urllib.parse.unquote(raw_id))
        except ulids.UlidError as error:
            return errors_response(400, ["Invalid ULID in path", str(error)])

        if operation == "item":
            if method == "PUT":
                return self._update(request, token_id, body)
            return self._get(token_id)
        if operation == "revoke":
            return self._revoke(token_id)
        return self._unrevoke(token_id)

    def _list(self, request: web.Request) -> web.Response:
        try:
            query = parse_list_query(request.query_string)
        except QueryError as error:
            return errors_response(400, error.titles)
        return json_response(200, build_list_response(query, self.store, self.filtered, self.clock.now_ns()))

    def _read_body(self, request: web.Request, body: bytes, struct) -> dict | web.Response:
        if not is_json_content_type(request.headers.get("Content-Type")):
            return text_response(415, "Expected request with `Content-Type: application/json`")
        try:
            return parse_body(body, struct)
        except BodyError as error:
            return text_response(error.status, error.text)

    def _add(self, request: web.Request, body: bytes) -> web.Response:
        fields = self._read_body(request, body, ADD_TOKEN_REQUEST)
        if isinstance(fields, web.Response):
            return fields

        token_string = fields.get("token")
        if token_string is None:
            token_string = generate_token_string()
        if self.store.find_by_string(token_string) is not None:
            return errors_response(409, ["A registration token with the same token already exists"])

        now_ns = self.clock.now_ns()
        expires_at_ns = fields.get("expires_at")
        token = RegistrationToken(
            id=self.ulid_source.new(now_ns // 1_000_000),
            token=token_string,
            usage_limit=fields.get("usage_limit"),
            created_at_ns=truncate_to_us(now_ns),
            expires_at_ns=truncate_to_us(expires_at_ns),
        )
        self.store.add(token)

        # The create response shows the values before PostgreSQL rounds them to microseconds.
        overrides = {"created_at": format_rfc3339(now_ns), "expires_at": format_rfc3339(expires_at_ns)}
        return _single_response(201, token, now_ns, f"{COLLECTION_PATH}/{token.id}", overrides)

    def _get(self, token_id: str) -> web.Response:
        token = self.store.get(token_id)
        if token is None:
            return _not_found(token_id)
        return _single_response(200, token, self.clock.now_ns(), f"{COLLECTION_PATH}/{token_id}")

    def _update(self, request: web.Request, token_id: str, body: bytes) -> web.Response:
        fields = self._read_body(request, body, EDIT_TOKEN_REQUEST)
        if isinstance(fields, web.Response):
            return fields

        token = self.store.get(token_id)
        if token is None:
            return _not_found(token_id)

        overrides = {}
        if "expires_at" in fields:
            token.expires_at_ns = truncate_to_us(fields["expires_at"])
            overrides["expires_at"] = format_rfc3339(fields["expires_at"])
        if "usage_limit" in fields:
            token.usage_limit = fields["usage_limit"]
        return _single_response(200, token, self.clock.now_ns(), f"{COLLECTION_PATH}/{token_id}", overrides)

    def _revoke(self, token_id: str) -> web.Response:
        token = self.store.get(token_id)
        if token is None:
            return _not_found(token_id)
        if token.revoked_at_ns is not None:
            return errors_response(400, [f"Registration token with ID {token_id} is already revoked"])

        now_ns = self.clock.now_ns()
        token.revoked_at_ns = truncate_to_us(now_ns)
        overrides = {"revoked_at": format_rfc3339(now_ns)}
        return _single_response(200, token, now_ns, f"{COLLECTION_PATH}/{token_id}/revoke", overrides)

    def _unrevoke(self, token_id: str) -> web.Response:
        token = self.store.get(token_id)
        if token is None:
            return _not_found(token_id)
        if token.revoked_at_ns is None:
            return errors_response(400, [f"Registration token with ID {token_id} is not revoked"])

        token.revoked_at_ns = None
        now_ns = self.clock.now_ns()
        return _single_response(200, token, now_ns, f"{COLLECTION_PATH}/{token_id}/unrevoke")
