"""The versioned JSON API, /api/v1: a personal API token (`Authorization: Bearer …`, made on
the API tokens page) acts as its user, under the screens' rules (another user's run is a 404).
A read-only token may only read. Errors are JSON with a stable code and a 4xx status. Each
module of this package declares its endpoints with `spec.operation` (importing the package
imports them all), and /api/v1/openapi.json is made from those declarations."""

import importlib
import pkgutil

from webapp.api.v1.core import bp

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["bp"]
