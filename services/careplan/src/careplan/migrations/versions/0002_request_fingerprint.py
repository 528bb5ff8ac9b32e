"""request_records.fingerprint: a hash of the create request without its request_id, so a
request_id reused with another request is refused instead of returning the first result
('' for records written before, which match no request)

Create Date: 2026-12-10 07:00:00
"""

import servicekit.migration_steps

revision: str = "0002"
down_revision: str | None = "0001"

upgrade = servicekit.migration_steps.add_fingerprint
downgrade = servicekit.migration_steps.drop_fingerprint
