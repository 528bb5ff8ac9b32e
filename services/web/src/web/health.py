"""Liveness and readiness of the web front.

Ready means this process can serve its pages: its settings were read (it would not have
started otherwise), its session store takes a write and gives it back, and it holds the
issuer's metadata (fetched once, then kept by Authlib), without which nobody can sign in or
refresh a token. The four services are **not** part of it: a service that is down makes the
pages that need it answer with the 503 page that invites a retry, while every other page
(and sign-in) keeps working; taking every replica of the front out of its Service because one
service is down would show people the ingress's bare error instead.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any

from cachelib.base import BaseCache
from flask import Flask

from web import auth

log = logging.getLogger("web.health")


def _session_store(app: Flask) -> str:
    store: BaseCache = app.config["SESSION_CACHELIB"]
    key = f"readyz:{os.getpid()}"
    value = uuid.uuid4().hex
    try:
        if store.set(key, value, timeout=60) and store.get(key) == value:
            store.delete(key)
            return "ok"
    except OSError:
        pass
    return "failing"


def _issuer() -> str:
    try:
        auth.oauth.carenet.load_server_metadata()
    except Exception as err:  # any failure means: not (yet) known
        log.info("issuer_metadata_unavailable error=%s", type(err).__name__)
        return "unreachable"
    return "ok"


def readiness(app: Flask) -> tuple[bool, dict[str, Any]]:
    checks = {"sessions": _session_store(app), "issuer": _issuer()}
    return all(state == "ok" for state in checks.values()), checks


def init_app(app: Flask) -> None:
    @app.get("/healthz")
    def healthz() -> tuple[dict[str, str], int]:
        return {"status": "ok"}, 200

    @app.get("/readyz")
    def readyz() -> tuple[dict[str, Any], int]:
        ready, checks = readiness(app)
        return {"status": "ok" if ready else "unavailable", "checks": checks}, (
            200 if ready else 503
        )
