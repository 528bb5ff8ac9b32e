"""carenet fhir: a read and search FHIR R4 API over the four services."""
