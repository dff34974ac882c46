"""Local stand-in for the WhatsApp Cloud API (Graph API), served over real HTTP by aiohttp.

In tests: the `fake_cloud` fixture (tests/conftest.py), reset per test; `add_number`,
`add_template`, `set_webhook` and `auto_statuses` set it up, `sent` and `webhook_log` show
what happened (tests/cloud_api_support.py has a webhook receiver and send bodies).
For benchmarks: `python -m tests.fakes.cloud_api --port 0 --no-rate-limit` prints its base
URL and is driven through `/_control/*` (control.py). Behaviours: server.py's docstring.
"""

from tests.fakes.cloud_api.server import FakeCloudApi

__all__ = ["FakeCloudApi"]
