"""carenet identity: organisations, patients, care relationships, consent, `Authorize` and the access log."""
