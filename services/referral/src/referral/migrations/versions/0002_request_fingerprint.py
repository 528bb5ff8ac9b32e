"""request_records.fingerprint: a SHA-256 of the create request (without its request_id), so
that a request_id reused for a different request is refused instead of replayed

Records written before this revision have an empty fingerprint: a retry of such a request
is refused (REQUEST_ID_REUSED) rather than answered with a result that may belong to
another request.

Create Date: 2026-12-07 06:00:00
"""

import servicekit.migration_steps

revision: str = "0002"
down_revision: str | None = "0001"

upgrade = servicekit.migration_steps.add_fingerprint
downgrade = servicekit.migration_steps.drop_fingerprint
