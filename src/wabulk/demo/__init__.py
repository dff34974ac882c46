"""Sample data a new user can explore every page with: `wabulk demo`, and its removal."""

from .service import LoadResult, RemoveResult, is_loaded, load_demo, remove_demo

__all__ = ["LoadResult", "RemoveResult", "is_loaded", "load_demo", "remove_demo"]
