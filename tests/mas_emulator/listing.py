"""GET /api/admin/v1/user-registration-tokens: query parsing, filters and pages.

Query values are decoded like serde_urlencoded (percent escapes, "+" as space),
and parse errors carry the cause chain MAS builds from axum's Query rejection.
"""

import bisect
import urllib.parse
from dataclasses import dataclass

from . import ulids
from .tokens import COLLECTION_PATH, TokenStore

DEFAULT_PAGE_SIZE = 10
USIZE_MAX = 2**64 - 1
FILTER_NAMES = ("used", "revoked", "expired", "valid")


class QueryError(Exception):
    """A rejected query string; `titles` is the JSON error list of the 400 response."""

    def __init__(self, titles: list[str]) -> None:
        super().__init__(titles[0])
        self.titles = titles


@dataclass(frozen=True)
class Pagination:
    before: str | None
    after: str | None
    forward: bool
    count: int


@dataclass(frozen=True)
class ListQuery:
    pagination: Pagination
    include_count: str  # "true", "false" or "only"
    filters: dict  # filter name -> bool, only the ones given


def _query_error(top: str, message: str) -> QueryError:
    return QueryError([top, f"Failed to deserialize query string: {message}", message, message])


def parse_pairs(query_string: str) -> list[tuple[str, str]]:
    pairs = []
    for part in query_string.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((urllib.parse.unquote_plus(key), urllib.parse.unquote_plus(value)))
    return pairs


def _parse_usize(value: str) -> int:
    digits = value[1:] if value.startswith("+") else value
    if not value:
        raise ValueError("cannot parse integer from empty string")
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ValueError("invalid digit found in string")
    number = int(digits)
    if number > USIZE_MAX:
        raise ValueError("number too large to fit in target type")
    return number


def _parse_pagination(pairs: list[tuple[str, str]]) -> tuple[Pagination, str]:
    top = "Invalid pagination parameters"
    seen: dict[str, object] = {}

    for key, value in pairs:
        if key not in ("page[before]", "page[after]", "page[first]", "page[last]", "count"):
            continue
        if key in seen:
            raise _query_error(top, f"duplicate field `{key}`")
        try:
            if key in ("page[before]", "page[after]"):
                seen[key] = ulids.canonical(value)
            elif key == "count":
                if value not in ("true", "false", "only"):
                    raise ValueError(f"unknown variant `{value}`, expected one of `true`, `false`, `only`")
                seen[key] = value
            else:
                number = _parse_usize(value)
                if number == 0:
                    raise ValueError("invalid value: integer `0`, expected a nonzero usize")
                seen[key] = number
        except ValueError as error:
            raise _query_error(top, f"{key}: {error}") from None

    first = seen.get("page[first]")
    last = seen.get("page[last]")
    if first is not None and last is not None:
        raise QueryError(["Cannot specify both `page[first]` and `page[last]` parameters"])

    pagination = Pagination(
        before=seen.get("page[before]"),
        after=seen.get("page[after]"),
        forward=last is None,
        count=last if last is not None else (first if first is not None else DEFAULT_PAGE_SIZE),
    )
    return pagination, seen.get("count", "true")


def _parse_filters(pairs: list[tuple[str, str]]) -> dict:
    filters: dict[str, bool] = {}
    for key, value in pairs:
        if not (key.startswith("filter[") and key.endswith("]") and key[7:-1] in FILTER_NAMES):
            continue
        name = key[7:-1]
        if name in filters:
            raise _query_error("Invalid filter parameters", f"duplicate field `{key}`")
        if value not in ("true", "false"):
            raise _query_error("Invalid filter parameters", f"{key}: provided string was not `true` or `false`")
        filters[name] = value == "true"
    return filters


def parse_list_query(query_string: str) -> ListQuery:
    """Parse the list query string or raise QueryError with MAS's titles."""
    pairs = parse_pairs(query_string)
    pagination, include_count = _parse_pagination(pairs)
    filters = _parse_filters(pairs)
    return ListQuery(pagination=pagination, include_count=include_count, filters=filters)


def base_path(query: ListQuery) -> str:
    """Return the link base: the path, the filters in MAS's fixed order, then count."""
    parts = [f"filter[{name}]={'true' if query.filters[name] else 'false'}" for name in FILTER_NAMES if name in query.filters]
    if query.include_count != "true":
        parts.append(f"count={query.include_count}")
    return COLLECTION_PATH + ("?" + "&".join(parts) if parts else "")


def link_with_pagination(base: str, pagination: Pagination) -> str:
    path, _, query = base.partition("?")
    parts = [query] if query else []
    if pagination.before is not None:
        parts.append(f"page[before]={pagination.before}")
    if pagination.after is not None:
        parts.append(f"page[after]={pagination.after}")
    parts.append(f"page[{'first' if pagination.forward else 'last'}]={pagination.count}")
    return f"{path}?{'&'.join(parts)}"


class FilteredIds:
    """Caches the sorted ids that match each filter combination.

    An entry stays valid until the store changes or the clock reaches the next
    expires_at that could move a token between expired and not expired.
    """

    def __init__(self, store: TokenStore) -> None:
        self.store = store
        self._cache: dict[tuple, tuple[int, int | None, list[str]]] = {}

    def get(self, filters: dict, now_ns: int) -> list[str]:
        if not filters:
            return self.store.sorted_ids

        key = tuple(filters.get(name) for name in FILTER_NAMES)
        cached = self._cache.get(key)
        if cached is not None:
            version, valid_until_ns, ids = cached
            if version == self.store.version and (valid_until_ns is None or now_ns < valid_until_ns):
                return ids

        ids = []
        next_boundary = None
        for token_id in self.store.sorted_ids:
            token = self.store.by_id[token_id]
            if token.expires_at_ns is not None and token.expires_at_ns >= now_ns:
                if next_boundary is None or token.expires_at_ns < next_boundary:
                    next_boundary = token.expires_at_ns
            if self._matches(token, filters, now_ns):
                ids.append(token_id)

        self._cache[key] = (self.store.version, next_boundary, ids)
        return ids

    @staticmethod
    def _matches(token, filters: dict, now_ns: int) -> bool:
        used = filters.get("used")
        if used is not None and (token.times_used > 0) != used:
            return False
        revoked = filters.get("revoked")
        if revoked is not None and (token.revoked_at_ns is not None) != revoked:
            return False
        expired = filters.get("expired")
        if expired is not None and token.is_expired(now_ns) != expired:
            return False
        valid = filters.get("valid")
        if valid is not None and token.is_valid(now_ns) != valid:
            return False
        return True


def select_page(ids: list[str], pagination: Pagination) -> tuple[list[str], bool, bool]:
    """Return (page ids, has_next_page, has_previous_page) as MAS's storage layer does."""
    low = bisect.bisect_right(ids, pagination.after) if pagination.after is not None else 0
    high = bisect.bisect_left(ids, pagination.before) if pagination.before is not None else len(ids)
    if high < low:
        high = low

    count = pagination.count
    if pagination.forward:
        page = ids[low:min(high, low + count + 1)]
        has_next = len(page) > count
        return page[:count], has_next, False

    page = ids[max(low, high - count - 1):high]
    has_previous = len(page) > count
    return page[-count:] if has_previous else page, False, has_previous


def build_list_response(query: ListQuery, store: TokenStore, filtered: FilteredIds, now_ns: int) -> dict:
    base = base_path(query)
    ids = filtered.get(query.filters, now_ns)

    if query.include_count == "only":
        return {"meta": {"count": len(ids)}, "links": {"self": base}}

    page_ids, has_next, has_previous = select_page(ids, query.pagination)
    data = []
    for token_id in page_ids:
        resource = store.by_id[token_id].resource(now_ns)
        resource["meta"] = {"page": {"cursor": token_id}}
        data.append(resource)

    pagination = query.pagination
    links = {
        "self": link_with_pagination(base, pagination),
        "first": link_with_pagination(base, Pagination(None, None, True, pagination.count)),
        "last": link_with_pagination(base, Pagination(None, None, False, pagination.count)),
    }
    if has_next:
        links["next"] = link_with_pagination(base, Pagination(None, page_ids[-1], pagination.forward, pagination.count))
    if has_previous:
        links["prev"] = link_with_pagination(base, Pagination(page_ids[0], None, pagination.forward, pagination.count))

    response: dict = {}
    if query.include_count == "true":
        response["meta"] = {"count": len(ids)}
    response["data"] = data
    response["links"] = links
    return response
