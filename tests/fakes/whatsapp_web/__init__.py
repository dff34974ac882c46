"""Local stand-in for WhatsApp Web, served over real HTTP for Selenium tests and benchmarks."""

from tests.fakes.whatsapp_web.server import FakeWhatsAppWeb

__all__ = ["FakeWhatsAppWeb"]
