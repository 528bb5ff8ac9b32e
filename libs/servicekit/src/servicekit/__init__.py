"""The shared runtime of the carenet services.

Every service builds its server with :func:`servicekit.server.create_server`, raises
:mod:`servicekit.errors` domain errors, reads its settings through
:class:`servicekit.config.ServiceSettings` and gets the caller from
:func:`servicekit.auth.current_principal`.
"""
