"""The identity use cases, one module per resource, as plain functions over a unit of work.

Every function takes the dependencies (:class:`~identity.use_cases.deps.Deps`) and the
verified :class:`~servicekit.auth.Principal`, and returns models or plain values: proto
messages stop at the servicer, sessions at the unit of work and the repository. Every read
or write of patient data passes through :mod:`identity.use_cases.decisions`, which applies
the decision table of :mod:`identity.policy` and appends one access-log entry in the same
transaction.

- ``deps``: the collaborators (units of work, caches, keys, provisioner), in one place;
- ``common``: roles, pages, the caller's organisation and care group, request_id replay;
- ``decisions``: deciding an access to patient data and logging it;
- ``organisations``, ``patients``, ``relationships``, ``consents``: the resources;
- ``authorization``: ``Authorize`` and ``BatchAuthorize``;
- ``access_log``: reading and verifying the access log;
- ``people``: resolving delegations and looking people up.
"""
