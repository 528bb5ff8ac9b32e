"""The careplan use cases, as plain functions over :class:`careplan.deps.Deps`, one module
per resource: :mod:`.plans` (create, read, whole-plan update, operator seeding),
:mod:`.plan_items` (one goal, action or evaluation moment by its id), :mod:`.revisions` (the
history) and :mod:`.referral_links` (actions following their linked referrals). What they
share (read a plan and ask identity about the access, write a new version) is in
:mod:`.versions`.

Every read and write of a plan asks identity's ``Authorize`` once (see
:mod:`careplan.access`), which logs the access: the plan is read first (one statement), the
question is the one that plan implies, and nothing is returned before identity's answer.
Within a permitted update, :mod:`careplan.policy` decides per field group. Every accepted
update writes a new immutable revision holding the whole plan; the etag is the version, and
the write is a compare-and-set on it, so concurrent writers never lose an update: each one
is either in the history or got ABORTED.
"""
