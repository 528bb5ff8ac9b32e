"""The security headers of every response (Flask-Talisman), worked out once.

Flask-Talisman builds its headers anew for every response: it looks up the view's own
options four times a request and writes the Content-Security-Policy and Permissions-Policy
out of their tables each time. With no per-view options and no CSP nonce (this front uses
neither), the headers are the same on every response except Strict-Transport-Security,
which depends on the request (sent over HTTPS only). :class:`FixedHeadersTalisman` has
Flask-Talisman's own code build them on the first response and sets the kept list on every
later one, in the same order; HSTS is still decided per request, and a view that does carry
its own options (``@talisman(...)``) or a configured nonce gets Flask-Talisman's own
per-response path.
"""

from __future__ import annotations

from typing import Any

import flask
from flask_talisman import Talisman
from werkzeug.datastructures import Headers


class FixedHeadersTalisman(Talisman):  # type: ignore[misc]  # flask-talisman has no types
    _fixed: tuple[list[tuple[str, str]], list[tuple[str, str]]] | None = None

    def _own_options(self) -> bool:
        """Whether the request's view has options of its own (``@talisman(...)``)."""
        view = flask.current_app.view_functions.get(flask.request.endpoint)  # type: ignore[arg-type]
        return hasattr(view, "talisman_view_options")

    def _make_nonce(self) -> None:
        if self.content_security_policy_nonce_in or self._own_options():
            super()._make_nonce()

    def _set_response_headers(self, response: Any) -> Any:
        if self.content_security_policy_nonce_in or self._own_options():
            return super()._set_response_headers(response)
        fixed = self._fixed
        if fixed is None:
            fixed = self._fixed = self._build()
        before_hsts, after_hsts = fixed
        headers = response.headers
        for name, value in before_hsts:
            headers[name] = value
        self._set_hsts_headers(headers)
        for name, value in after_hsts:
            headers[name] = value
        return response

    def _build(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The headers Flask-Talisman's ``_set_response_headers`` sets, without HSTS, in its
        order (before HSTS, after HSTS)."""
        options = self._get_local_options()
        before = Headers()
        self._set_feature_policy_headers(before, options)
        self._set_permissions_policy_headers(before, options)
        self._set_document_policy_headers(before, options)
        self._set_frame_options_headers(before, options)
        self._set_content_security_policy_headers(before, options)
        after = Headers()
        self._set_referrer_policy_headers(after)
        return list(before.items()), list(after.items())
