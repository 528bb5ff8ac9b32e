"""The referral use cases, one module per resource or use case, as plain functions over
the dependencies (referral.deps.Deps) and a unit of work. Proto messages stop at the
servicer; sessions stop at the unit of work and the repository."""
