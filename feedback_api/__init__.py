"""The bandit-router HTTP service: a thin FastAPI layer over the library's public API.

    bandit-router keys create --scope admin     # prints a key once
    bandit-router serve                         # 127.0.0.1:8000, embedded defaults
"""

from .app import build_router, create_app
from .keys import ApiKey, KeyStore
from .settings import Settings, get_settings

__all__ = ["ApiKey", "KeyStore", "Settings", "build_router", "create_app", "get_settings"]
