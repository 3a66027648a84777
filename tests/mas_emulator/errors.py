"""Response builders with the exact bodies, content types and headers MAS sends."""

import json

from aiohttp import web

# MAS's CORS layer adds these to every API and OAuth response, but not to the HTML 404 page.
CORS_HEADERS = {
    "vary": "origin, access-control-request-method, access-control-request-headers",
    "access-control-allow-origin": "*",
}


def dump_json(payload: object) -> bytes:
    """Serialise compactly and without ASCII escaping, as serde_json does."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_response(status: int, payload: object, headers: dict | None = None) -> web.Response:
    all_headers = {"Content-Type": "application/json", **CORS_HEADERS, **(headers or {})}
    return web.Response(status=status, body=dump_json(payload), headers=all_headers)


def errors_response(status: int, titles: list[str]) -> web.Response:
    """Return an admin API error: one entry per error in the cause chain."""
    return json_response(status, {"errors": [{"title": title} for title in titles]})


def text_response(status: int, text: str) -> web.Response:
    headers = {"Content-Type": "text/plain; charset=utf-8", **CORS_HEADERS}
    return web.Response(status=status, body=text.encode("utf-8"), headers=headers)


def method_not_allowed(allow: str) -> web.Response:
    """Return axum's 405: an Allow header and an empty body without a content type."""
    return web.Response(status=405, headers={**CORS_HEADERS, "Allow": allow})


def _escape_html(text: str) -> str:
    replacements = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "/": "&#x2f;"}
    return "".join(replacements.get(char, char) for char in text)


_NOT_FOUND_HEAD = (
    "\n" * 11
    + "<!DOCTYPE html>\n"
    '<html lang="en">\n'
    "  <head>\n"
    '    <meta charset="utf-8">\n'
    "    <title>matrix-authentication-service</title>\n"
    '    <meta name="viewport" content="width=device-width, initial-scale=1">\n'
    '    <link rel="stylesheet" href="/assets/assets/vendor-STUB.css" crossorigin="anonymous" />\n'
    '    <link rel="stylesheet" href="/assets/assets/shared-STUB.css" crossorigin="anonymous" />\n'
    '    <link rel="stylesheet" href="/assets/assets/templates-STUB.css" crossorigin="anonymous" />\n'
    '    <script type="module" src="/assets/assets/templates-STUB.js" crossorigin="anonymous"></script>\n'
    "    \n"
    "  </head>\n"
    "  <body>\n"
    '    <div class="layout-container">\n'
    "      \n"
    '<main class="w-96 flex-1 flex flex-col gap-2 justify-center">\n'
    '  <h1 class="text-xl font-semibold">Page not found</h1>\n'
    "  <p>The page you were looking for doesn't exist or has been moved</p>\n"
    "  <div>\n"
    "    \n"
    '  <a class="cpd-link " data-kind="primary" href="&#x2f;">Go back to the homepage</a>\n'
    "\n"
    "  </div>\n"
    "\n"
    "  <hr />\n"
    "\n"
    "  <code>\n"
    '    <pre class="whitespace-pre-wrap break-all">'
)
_NOT_FOUND_TAIL = (
    "</pre>\n"
    "  </code>\n"
    "</main>\n"
    "\n"
    '      <footer class="legal-footer"></footer>\n'
    "    </div>\n"
    "  </body>\n"
    "</html>"
)


def not_found_page(method: str, target: str) -> web.Response:
    """Return MAS's HTML 404 page, which echoes the request line it could not route."""
    request_line = _escape_html(f"{method} {target} HTTP/1.1\n\nHTTP/1.1 404 Not Found")
    body = _NOT_FOUND_HEAD + request_line + _NOT_FOUND_TAIL
    return web.Response(
        status=404,
        body=body.encode("utf-8"),
        headers={"Content-Type": "text/html; charset=utf-8"},
    )
