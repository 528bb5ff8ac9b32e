"""Mappings from the services' messages to FHIR R4 resources (plain dicts, FHIR JSON).

Pure functions: a message in, a resource out. The tests validate every resource these
produce against the FHIR models of ``fhir.resources`` (R4B, element-for-element the same as
R4 for the resources served here).
"""
