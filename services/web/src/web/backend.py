"""The four services, called with the signed-in person's access token.

The web front holds no patient data of its own: every page reads and writes through these
stubs (servicekit.platform_api), with the person's own token, so identity decides and logs
each access exactly as for any other client. gRPC errors become HTTP pages in
:mod:`web.app`; :func:`details` reads the field violations of a ``BadRequest`` so forms can
show them at their fields.
"""

from __future__ import annotations

from servicekit.platform_api import (
    Api,
    Channels,
    ErrorDetails,
    Metadata,
    Stubs,
    caller_metadata,
)
from servicekit.platform_api import error_details as details

__all__ = [
    "Api",
    "Channels",
    "ErrorDetails",
    "Metadata",
    "Stubs",
    "caller_metadata",
    "details",
]
