"""Segments pages: the builder, its live count, and retargeting from a campaign's page."""

from . import retarget  # noqa: F401  (its routes and template globals join the blueprint)
from .views import bp

__all__ = ["bp"]
