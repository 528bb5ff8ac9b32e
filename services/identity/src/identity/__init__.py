"""carenet identity: organisations, patients, care relationships, consent, authorization
and the access log."""
