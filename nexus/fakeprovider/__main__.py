"""Run the fake provider: ``python -m nexus.fakeprovider --port 9100``."""

import argparse
import asyncio
import logging

from nexus.fakeprovider.app import FakeProviderApp, bind_socket, start_site

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m nexus.fakeprovider",
        description="Serve fake OpenAI and Anthropic APIs for tests and benchmarks.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=9100, help="TCP port; 0 picks one")
    parser.add_argument("--openai-key", help="the only OpenAI API key to accept")
    parser.add_argument("--anthropic-key", help="the only Anthropic API key to accept")
    parser.add_argument(
        "--max-recorded",
        type=int,
        default=10_000,
        help="number of recent requests kept for /_fake/requests; 0 records none",
    )
    parser.add_argument("--log-level", default="INFO", help="Python logging level")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Serve until the process is stopped."""
    keys = {"openai": args.openai_key, "anthropic": args.anthropic_key}
    fake = FakeProviderApp(keys=keys, max_recorded=args.max_recorded)
    sock = bind_socket(args.host, args.port)
    runner = await start_site(fake, sock)
    host, port = sock.getsockname()[:2]
    logger.info("fake provider listening on %s:%s", host, port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """Run the server with uvloop when it is installed."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        try:
            runner.run(serve(args))
        except KeyboardInterrupt:
            logger.info("fake provider stopped")


if __name__ == "__main__":
    main()
