"""Create the MAS client the bot authenticates as, or check a plugin config against MAS.

    ./worker mas-client [MAS_BASE_URL]         print a new client ID and secret with both config snippets
    ./worker mas-client --check plugin.yaml    request a token and call the admin API once

Generation prints the client secret on stdout only, and writes it to a file
only when --write-config is given. --check never prints the secret or the
access token.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

import standalone
from standalone import ConfigError, PluginConfig

DEFAULT_BASE_URL = "https://mas.example.org"
ADMIN_SCOPE = "urn:mas:admin"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# Headings that start each printed section. Tests split the output on them.
HEADING_MAS = "==> 1. MAS config"
HEADING_PLUGIN = "==> 2. Plugin config"
HEADING_APPLY = "==> 3. Apply the MAS change"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./worker mas-client",
        description="Print a new MAS client ID and secret with the MAS and plugin config snippets "
        "that use them, or check a plugin config against MAS with --check.",
    )
    parser.add_argument(
        "base_url",
        nargs="?",
        metavar="MAS_BASE_URL",
        help=f"public base URL of MAS, used only as text in the snippets (default {DEFAULT_BASE_URL})",
    )
    parser.add_argument(
        "--write-config",
        type=Path,
        metavar="FILE",
        help="also write the plugin config snippet, secret included, to FILE (created with mode 600, never overwritten)",
    )
    parser.add_argument(
        "--check",
        type=Path,
        metavar="CONFIG_FILE",
        help="load this plugin config, request an access token and call the admin API once; exit 1 if a step fails",
    )
    parser.add_argument(
        "--wasm",
        type=Path,
        metavar="FILE",
        help="with --check, run this compiled core instead of building target/.../mas_token_core.wasm when it is stale",
    )
    parser.add_argument("--verbose", action="store_true", help="with --check, print the plugin's log on stderr")
    args = parser.parse_args(argv)
    if args.check is not None and (args.base_url is not None or args.write_config is not None):
        parser.error("--check takes only the plugin config file; leave out MAS_BASE_URL and --write-config")
    return args


# Generation.

@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str


def new_credentials() -> Credentials:
    return Credentials(client_id=standalone.new_ulid(), client_secret=secrets.token_urlsafe(32))


def normalise_base_url(text: str) -> str:
    """Return the base URL without a trailing slash, raising ValueError unless it is an http(s) URL."""
    url = text.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"invalid MAS base URL {text!r}: expected an http:// or https:// URL such as {DEFAULT_BASE_URL}")
    if parts.query or parts.fragment:
        raise ValueError(f"invalid MAS base URL {text!r}: remove the query or fragment")
    return url


def quoted(value: str) -> str:
    """Return `value` as a YAML double-quoted scalar (a JSON string is one)."""
    return json.dumps(value)


def mas_config_snippet(credentials: Credentials) -> str:
    client_id = quoted(credentials.client_id)
    return f"""\
# Merge into MAS's config.yaml. If the file already has a `clients` list or a
# `policy.data.admin_clients` list, add these entries to the existing lists.
clients:
  - client_id: {client_id}
    client_auth_method: client_secret_basic
    client_secret: {quoted(credentials.client_secret)}

policy:
  data:
    # Only clients listed here may get the urn:mas:admin scope.
    admin_clients:
      - {client_id}

# Skip this section if a listener already serves the `adminapi` resource.
# Otherwise add `- name: adminapi` to the resources of the listener that serves
# MAS's public URL. The one below is MAS's default `web` listener with it added.
http:
  listeners:
    - name: web
      resources:
        - name: discovery
        - name: human
        - name: oauth
        - name: compat
        - name: graphql
        - name: assets
        - name: adminapi
      binds:
        - address: "[::]:8080"
"""


def plugin_config_snippet(credentials: Credentials, base_url: str) -> str:
    return f"""\
# Set these keys in the bot instance's config (maubot web UI, Instances tab).
admin_api: {quoted(base_url + "/api/admin")}
token_url: {quoted(base_url + "/oauth2/token")}
client_id: {quoted(credentials.client_id)}
# SECURITY: this secret gives full admin access to MAS. Keep this config private.
client_secret: {quoted(credentials.client_secret)}
token_scope: {quoted(ADMIN_SCOPE)}
"""


def apply_commands() -> str:
    return """\
# `mas-cli config sync` copies the clients from config.yaml into MAS's
# database, and the restart loads the new policy data and listeners.
# With systemd (adjust the unit name and the config path to your install):
mas-cli config sync --config=/etc/mas/config.yaml
sudo systemctl restart matrix-authentication-service

# With docker compose (adjust the service name):
docker compose exec mas mas-cli config sync
docker compose restart mas
"""


def render(credentials: Credentials, base_url: str, base_url_given: bool) -> str:
    sections = [
        f"{HEADING_MAS} (config.yaml)",
        mas_config_snippet(credentials),
        f"{HEADING_PLUGIN} (the bot instance in maubot)",
    ]
    if not base_url_given:
        sections.append(
            f"# NOTE: {DEFAULT_BASE_URL} is a placeholder. Replace it with your MAS public base URL,\n"
            "# or run ./worker mas-client https://your-mas-host to print the right URLs."
        )
    sections += [
        plugin_config_snippet(credentials, base_url),
        HEADING_APPLY,
        apply_commands(),
        "Then check the plugin config with: ./worker mas-client --check PLUGIN_CONFIG_FILE",
    ]
    return "\n".join(sections)


def write_private_file(path: Path, text: str) -> None:
    """Create `path` with mode 600 and write `text`; raise FileExistsError rather than overwrite."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(text)


def generate(args: argparse.Namespace) -> int:
    try:
        base_url = normalise_base_url(args.base_url if args.base_url is not None else DEFAULT_BASE_URL)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE

    credentials = new_credentials()
    print(render(credentials, base_url, base_url_given=args.base_url is not None))

    if args.write_config is not None:
        try:
            write_private_file(args.write_config, plugin_config_snippet(credentials, base_url))
        except FileExistsError:
            print(f"error: {args.write_config} already exists and was not changed; choose a new file name", file=sys.stderr)
            return EXIT_FAILED
        except OSError as error:
            print(f"error: cannot write {args.write_config}: {error.strerror or error}", file=sys.stderr)
            return EXIT_FAILED
        print(f"Wrote the plugin config snippet to {args.write_config} (mode 600).", file=sys.stderr)
    return EXIT_OK


# --check

CHECK_SENDER = "@mas-client-check:localhost"
CHECK_ROOM = "!mas-client-check:localhost"


def config_for_check(config: PluginConfig) -> PluginConfig:
    """Return `config` with CHECK_SENDER added to the whitelist, so the core runs the status command.

    The whitelists decide who may run commands in a room, and --check runs
    outside any room, so the added sender changes nothing else in the check.
    """
    values = dict(config.values)
    whitelist = values.get("whitelist")
    values["whitelist"] = [*whitelist, CHECK_SENDER] if isinstance(whitelist, list) else [CHECK_SENDER]
    return PluginConfig(values=values, unknown_keys=config.unknown_keys)


async def run_status(wasm: bytes, config: PluginConfig, verbose: bool) -> standalone.MessageResult:
    """Run `!<base_command> status` through the real core and transport with `config`."""
    import aiohttp

    log = standalone.make_logger("mas_token_bot.check", verbose)
    if not verbose:
        # The reply already explains each failure, so the log is for --verbose only.
        log.setLevel(logging.CRITICAL)
    async with aiohttp.ClientSession() as session:
        bot = standalone.StandaloneBot(wasm, session, log)
        bot.configure(config)
        return await bot.send(f"!{bot.base_command} status", sender=CHECK_SENDER, room_id=CHECK_ROOM)


def run_check(path: Path, wasm_path: Optional[Path], verbose: bool) -> int:
    """Print the reply of the core's status command for the plugin config at `path`; exit 1 when it reports a failure."""
    try:
        config = standalone.load_plugin_config_file(path)
        wasm = standalone.read_wasm(wasm_path if wasm_path is not None else standalone.ensure_wasm())
    except (ConfigError, standalone.BuildError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED

    print(f"Checking the plugin config {path} with the bot's status command.")
    for key in config.unknown_keys:
        print(f"Note: the plugin ignores the key {key!r}, because base-config.yaml has no such setting.")

    result = asyncio.run(run_status(wasm, config_for_check(config), verbose))
    if not result.replies:
        print("error: the core sent no reply to the status command; rebuild the plugin with ./worker build", file=sys.stderr)
        return EXIT_FAILED

    for reply in result.replies:
        print(reply.body)
    print(result.trace())

    if result.failed:
        if not verbose:
            print("Run again with --verbose to see the bot's log on stderr.")
        return EXIT_FAILED
    return EXIT_OK


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    if args.check is not None:
        try:
            return run_check(args.check, args.wasm, args.verbose)
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return 130
    return generate(args)


if __name__ == "__main__":
    sys.exit(main())
