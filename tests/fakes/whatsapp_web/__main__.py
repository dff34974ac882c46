"""`python -m tests.fakes.whatsapp_web --port 8765`: serve the stand-in until Ctrl-C.

For trying the channel by hand and for benchmarks, which drive it through /_control/*.
"""

from __future__ import annotations

import argparse
import threading

from tests.fakes.whatsapp_web.server import VARIANTS, FakeWhatsAppWeb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--variant", choices=VARIANTS, default="current")
    args = parser.parse_args()
    fake = FakeWhatsAppWeb(variant=args.variant, host=args.host, port=args.port).start()
    print(f"Fake WhatsApp Web on {fake.url} (control API under {fake.url}/_control/)", flush=True)
    try:
        threading.Event().wait()  # the server runs in its own thread
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
