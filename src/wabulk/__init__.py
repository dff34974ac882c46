"""wabulk: self-hosted WhatsApp marketing campaigns."""

__version__ = "0.1.0"
