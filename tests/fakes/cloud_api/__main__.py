"""`python -m tests.fakes.cloud_api --port N [--no-rate-limit]`: serve the fake until killed.

Prints its base URL as one line on stdout, then serves; a benchmark drives it through
`/_control/*` (see control.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from tests.fakes.cloud_api.server import FakeCloudApi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--no-rate-limit", action="store_true", help="no 80/s bucket per number")
    parser.add_argument("--throttle-status", type=int, default=400, choices=(400, 429))
    parser.add_argument("--webhook-lanes", type=int, default=8, help="webhook POSTs in flight")
    parser.add_argument("--batch-window", type=float, default=0.25)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()
    fake = FakeCloudApi(
        rate_limit=not args.no_rate_limit,
        host=args.host,
        port=args.port,
        # Nobody reads the log of a separate process; at 150,000 posts it would be ~100 MB.
        keep_webhook_bodies=False,
        webhook_lanes=max(1, args.webhook_lanes),
    )
    fake.batch_window = args.batch_window
    fake.throttle_http_status = args.throttle_status
    fake.send_latency = max(0.0, args.latency)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(fake.serve(lambda url: print(url, flush=True)))


if __name__ == "__main__":
    main()
