"""WhatsApp Web through Selenium and Chrome: selectors, browser, page, channel."""

from .channel import WhatsAppWebChannel

__all__ = ["WhatsAppWebChannel"]
