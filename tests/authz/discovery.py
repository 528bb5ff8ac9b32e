"""Which RPCs of the four services carry a patient, read from the generated descriptors.

A request carries a patient when, anywhere in it (nested messages included):

- a field is named ``patient``, ``patients`` or ``bsn`` (a BSN names a patient too);
- a ``name`` or ``parent`` field names a resource under ``patients/``: the method's resource
  is the response message when it is a resource (``google.api.resource``), else the
  resource message whose name the method name contains (the longest: ``CarePlanRevision``
  before ``CarePlan``); a method whose resource cannot be told counts as carrying a patient
  (fail closed);
- a field holds a resource message whose pattern starts with ``patients/`` (the resource
  carries its own name, as ``UpdateCarePlanRequest.care_plan`` does).

A message that says who is asking (identity's ``Subject``: the end user a service asks for)
is not looked into: its ``patient`` is the caller's own identity when the caller is a
patient, not a patient whose data the request is about.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

from google.api import resource_pb2
from google.protobuf.descriptor import (
    Descriptor,
    FieldDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)

SERVICES = ("identity", "referral", "careplan", "outcomes")
PATIENT_FIELDS = frozenset({"patient", "patients", "bsn"})
NAME_FIELDS = frozenset({"name", "parent"})
PATIENT_PATTERN = "patients/"
CALLER_MESSAGES = frozenset({"carenet.identity.v1.Subject"})


def services() -> Iterator[tuple[str, ServiceDescriptor]]:
    for short in SERVICES:
        module = importlib.import_module(f"carenet.{short}.v1.{short}_service_pb2")
        for service in module.DESCRIPTOR.services_by_name.values():
            yield short, service


def _pattern(message: Descriptor) -> str | None:
    options = message.GetOptions()
    if not options.HasExtension(resource_pb2.resource):
        return None
    patterns = list(options.Extensions[resource_pb2.resource].pattern)
    return patterns[0] if patterns else None


def _resources(method: MethodDescriptor) -> dict[str, str]:
    """The resource messages of the method's package, by message name: their pattern."""
    out: dict[str, str] = {}
    package = method.containing_service.file.package
    seen: set[str] = set()
    stack = [method.input_type, method.output_type]
    # every message reachable from the service's file and its dependencies in the package
    files = [method.containing_service.file, *method.containing_service.file.dependencies]
    for file in files:
        if file.package != package:
            continue
        stack.extend(file.message_types_by_name.values())
    while stack:
        message = stack.pop()
        if message.full_name in seen:
            continue
        seen.add(message.full_name)
        pattern = _pattern(message)
        if pattern is not None:
            out[message.name] = pattern
        stack.extend(f.message_type for f in message.fields if f.message_type is not None)
    return out


def method_resource(method: MethodDescriptor) -> str | None:
    """The resource pattern a method's ``name``/``parent`` refers to, or None if unknown."""
    own = _pattern(method.output_type)
    if own is not None:
        return own
    candidates = [(name, p) for name, p in _resources(method).items() if name in method.name]
    if not candidates:
        return None
    return max(candidates, key=lambda item: len(item[0]))[1]


def _carries(message: Descriptor, resource: str | None, seen: frozenset[str]) -> list[str]:
    """The paths of the fields of ``message`` that carry a patient."""
    found: list[str] = []
    for field in message.fields:
        if field.name in PATIENT_FIELDS or (
            field.name in NAME_FIELDS
            and field.type == FieldDescriptor.TYPE_STRING
            and (resource is None or resource.startswith(PATIENT_PATTERN))
        ):
            found.append(field.name)
        if field.message_type is None or field.message_type.full_name in seen:
            continue
        nested = field.message_type
        pattern = _pattern(nested)
        if pattern is not None and pattern.startswith(PATIENT_PATTERN):
            found.append(field.name)
            continue
        if nested.full_name.startswith("google.") or nested.full_name in CALLER_MESSAGES:
            continue
        for path in _carries(nested, resource, seen | {nested.full_name}):
            found.append(f"{field.name}.{path}")
    return found


def patient_fields(method: MethodDescriptor) -> list[str]:
    """The request fields of ``method`` that carry a patient (empty: none)."""
    request = method.input_type
    return _carries(request, method_resource(method), frozenset({request.full_name}))


def patient_rpcs() -> dict[str, list[str]]:
    """``service.Method`` -> the fields that carry a patient, for every such RPC."""
    out: dict[str, list[str]] = {}
    for short, service in services():
        for method in service.methods:
            fields = patient_fields(method)
            if fields:
                out[f"{short}.{method.name}"] = fields
    return out


def all_rpcs() -> set[str]:
    return {f"{short}.{m.name}" for short, service in services() for m in service.methods}
