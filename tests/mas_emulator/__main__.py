"""Run the MAS emulator as a server for tests in other processes.

    python -m tests.mas_emulator --host 127.0.0.1 --port 0 \
        --client-id ID --client-secret SECRET [--path-prefix /mas] [--seed N]

It prints one line, "MAS emulator listening on http://HOST:PORT", and serves
until SIGTERM or SIGINT. Only loopback addresses are accepted for --host.
"""

import argparse
import asyncio
import logging
import signal
import sys

from .app import MasEmulator, check_loopback
from .oauth import DEFAULT_ACCESS_TOKEN_TTL_S


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.mas_emulator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one (default 0)")
    parser.add_argument("--client-id", help="OAuth client id of the admin client (default: a random ULID)")
    parser.add_argument("--client-secret", help="OAuth client secret of the admin client (default: random)")
    parser.add_argument(
        "--non-admin-client",
        nargs=2,
        action="append",
        default=[],
        metavar=("ID", "SECRET"),
        help="add a client that is not allowed urn:mas:admin; may be repeated",
    )
    parser.add_argument("--path-prefix", default="", help="serve the MAS routes under this path, e.g. /mas")
    parser.add_argument("--seed", type=int, default=0, help="number of registration tokens to create at start")
    parser.add_argument(
        "--access-token-ttl",
        type=int,
        default=DEFAULT_ACCESS_TOKEN_TTL_S,
        help=f"access token lifetime in seconds (default {DEFAULT_ACCESS_TOKEN_TTL_S}, as MAS)",
    )
    parser.add_argument("--log-level", default="WARNING", help="Python logging level for the emulator")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    emulator = MasEmulator(
        clients=[(client_id, secret, False) for client_id, secret in args.non_admin_client],
        client_id=args.client_id,
        client_secret=args.client_secret,
        path_prefix=args.path_prefix,
        host=args.host,
        port=args.port,
        access_token_ttl_s=args.access_token_ttl,
    )
    if args.seed:
        emulator.seed_tokens(args.seed)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    await emulator.start()
    print(f"MAS emulator listening on {emulator.root_url}", flush=True)
    try:
        await stop.wait()
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        check_loopback(args.host)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
