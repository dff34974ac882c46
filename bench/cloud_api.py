"""Cloud API: messages sent per second by the dispatcher, beside a bare async HTTP loop.

Runs the fake Graph API (tests/fakes/cloud_api) as its own process with its rate limit off,
and builds a SQLite instance with N contacts (50,000; `--quick` 5,000), one Cloud API sender
(made, checked and synced as the Senders page does; messages per second raised to 100,000
so the dispatcher's pacing is out of the way; tier unlimited) and a campaign on an approved
template whose body variable is the contact's name. Then, in the same run:

- product: the campaign launched (not timed), then one real `Lane` stepped until nothing is
  queued or sending: claims with per-recipient rendering, `CloudApiChannel.send_batch` with
  64 requests in flight (an `httpx.AsyncClient` of one connection each), settles.
  Messages ÷ wall seconds;
- bare loop: the very bodies the fake received from the product, posted again to the same
  fake by plain `httpx.AsyncClient`s built as the channel builds them (64 requests in
  flight, a client of one connection each), each answer parsed for its wamid. Requests ÷
  wall seconds;
- two more floors, for the record: the same posts through `aiohttp` (64 in flight; not with
  `--quick` unless `--all-floors`), and with `--one-pool` through one `httpx.AsyncClient`
  with a pool of 64 connections, as the channel did before (about 100 posts/s here).

The product run is checked before anything is printed: the fake counted exactly one send
per message (none lost, none doubled), each with its recipient's name, and every row is
`sent` after one attempt with the fake's wamid; the bare loop must get as many wamids as it
posted. A wrong result stops the script. Prints; never fails on a slow machine. The last
line is the JSON summary (see docs/performance.md).

    .venv/bin/python bench/cloud_api.py [--quick] [--all-floors] [--one-pool] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402
from cloud_setup import PNID, TOKEN, Fake, build, check_sends, drive, prepare_fake  # noqa: E402

BENCH = "cloud_api"
FULL, QUICK = 50_000, 5_000
TARGET_MESSAGES_PER_S = 1_000
TARGET_RATIO = 0.7


HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "Accept": "application/json",
    "Content-Type": "application/json",
}


def _client(size: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size, keepalive_expiry=60)
    return httpx.AsyncClient(headers=HEADERS, limits=limits, timeout=httpx.Timeout(20.0, pool=60.0))


async def _httpx(url: str, bodies: list[bytes], in_flight: int, pools: int) -> list[str]:
    """Post every body with `in_flight` requests outstanding over `pools` clients (the
    workers share them in turn); the wamids answered."""
    target = httpx.URL(url)
    pending = iter(bodies)
    wamids: list[str] = []
    clients = [_client(max(1, in_flight // pools)) for _ in range(pools)]

    async def worker(client: httpx.AsyncClient) -> None:
        for body in pending:
            response = await client.post(target, content=body)
            if response.status_code != 200:
                raise SystemExit(f"bare loop: HTTP {response.status_code}: {response.text}")
            wamids.append(json.loads(response.content)["messages"][0]["id"])

    try:
        await asyncio.gather(*(worker(clients[i % pools]) for i in range(in_flight)))
    finally:
        for client in clients:
            await client.aclose()
    return wamids


async def _aiohttp(url: str, bodies: list[bytes], in_flight: int) -> list[str]:
    import aiohttp

    pending = iter(bodies)
    wamids: list[str] = []
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(headers=HEADERS, connector=connector) as session:

        async def worker() -> None:
            for body in pending:
                async with session.post(url, data=body) as response:
                    content = await response.read()
                    if response.status != 200:
                        raise SystemExit(f"aiohttp loop: HTTP {response.status}: {content!r}")
                wamids.append(json.loads(content)["messages"][0]["id"])

        await asyncio.gather(*(worker() for _ in range(in_flight)))
    return wamids


def timed_loop(label: str, run: Any, n: int) -> dict:
    start = time.perf_counter()
    wamids = asyncio.run(run)
    seconds = time.perf_counter() - start
    if len(wamids) != n or len(set(wamids)) != n:
        raise SystemExit(f"{label}: {len(set(wamids)):,} wamids for {n:,} posts")
    return {"seconds": seconds, "sent": n}


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 messages for a smoke check")
    parser.add_argument(
        "--all-floors", action="store_true", help="with --quick, also run the aiohttp loop"
    )
    parser.add_argument(
        "--one-pool",
        action="store_true",
        help="also post through one httpx client with a pool of 64 (slow: ~100 posts/s)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile the product run (cProfile, top 30)"
    )
    args = parser.parse_args(argv)
    n = QUICK if args.quick else FULL

    from wabulk.channels.cloud_api.channel import DEFAULT_IN_FLIGHT
    from wabulk.channels.cloud_api.client import DEFAULT_VERSION

    fake = Fake()
    try:
        prepare_fake(fake)
        with tempfile.TemporaryDirectory(prefix="wabulk-bench-") as tmp:
            start = time.perf_counter()
            inst = build(Path(tmp), n, fake.url)
            print(
                f"built {n:,} contacts, a checked Cloud API sender and a launched template "
                f"campaign in {time.perf_counter() - start:.1f} s (fake at {fake.url})"
            )
            before = fake.read("counters")["sent"]
            profiler = cProfile.Profile() if args.profile else None
            if profiler:
                profiler.enable()
            product = drive(inst, fake.url)
            if profiler:
                profiler.disable()
            counted = fake.read("counters")["sent"] - before
            records = fake.read(f"sent?offset={before}")
            if counted != len(records):
                raise SystemExit(f"the fake's counter ({counted:,}) and log differ")
            check_sends(inst, records)
            bodies = [
                json.dumps(r["body"], ensure_ascii=False, separators=(",", ":")).encode()
                for r in records
            ]
        url = f"{fake.url}/{DEFAULT_VERSION}/{PNID}/messages"
        # The bare loop is built as the channel is: a client with one connection per slot.
        bare = timed_loop("bare loop", _httpx(url, bodies, DEFAULT_IN_FLIGHT, DEFAULT_IN_FLIGHT), n)
        floors = {}
        if not args.quick or args.all_floors:
            floors["aiohttp"] = timed_loop(
                "aiohttp loop", _aiohttp(url, bodies, DEFAULT_IN_FLIGHT), n
            )
        if args.one_pool:
            floors["one_pool"] = timed_loop(
                "httpx, one pool", _httpx(url, bodies, DEFAULT_IN_FLIGHT, 1), n
            )
        after = fake.read("counters")
        if after["sent"] - before != (2 + len(floors)) * n or after["rejected"]:
            raise SystemExit(f"the fake's counters after both runs are wrong: {after}")
    finally:
        fake.stop()

    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        print(out.getvalue())

    product_rate = _rate(n, product["seconds"])
    bare_rate = _rate(bare["sent"], bare["seconds"])
    ratio = product_rate / bare_rate
    print(
        f"{f'product  ({n:,} msgs)':<24} {product['seconds']:8.2f} s  {product_rate:>9,.0f} "
        f"msg/s  ({product['steps']:,} steps, {product['waits']} waits)"
    )
    print(
        f"{f'bare loop ({n:,} posts)':<24} {bare['seconds']:8.2f} s  {bare_rate:>9,.0f} "
        f"msg/s  ({DEFAULT_IN_FLIGHT} in flight)"
    )
    extra = {}
    for key, label in (("aiohttp", "aiohttp loop"), ("one_pool", "httpx, one pool of 64")):
        if key in floors:
            rate = extra[key] = _rate(n, floors[key]["seconds"])
            print(
                f"{label:<24} {floors[key]['seconds']:8.2f} s  {rate:>9,.0f} msg/s  "
                f"({DEFAULT_IN_FLIGHT} in flight)"
            )
    print("checked: the fake got exactly one send per message, with its name and wamid")
    print("targets:")
    print(
        f"  >= {TARGET_MESSAGES_PER_S:,} messages/s: {product_rate:,.0f}"
        f"  {_verdict(product_rate >= TARGET_MESSAGES_PER_S)}"
        + ("" if n == FULL else " (quick run: not the issue's size)")
    )
    print(
        f"  >= {TARGET_RATIO:.0%} of the bare loop: {ratio:.1%}  {_verdict(ratio >= TARGET_RATIO)}"
    )
    summary = {
        "bench": BENCH,
        "unit": "messages/s",
        "product": round(product_rate),
        "baseline": {
            "bare_loop": round(bare_rate),
            **{f"{key}_loop": round(rate) for key, rate in extra.items()},
        },
        "ratio": {"product_over_bare_loop": round(ratio, 3)},
        "target": {"product": TARGET_MESSAGES_PER_S, "product_over_bare_loop": TARGET_RATIO},
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
