"""The outcomes use cases as plain functions over :class:`outcomes.deps.Deps`, one module
per resource: enrolments, measurements (and their ingest), indicators, contracts, reports
(and source discrepancies), financing and SROI."""
