"""Local stand-in for the WhatsApp Cloud API (Graph API), served over real HTTP by aiohttp."""

from tests.fakes.cloud_api.server import FakeCloudApi

__all__ = ["FakeCloudApi"]
