"""carenet_client against the real services and real tokens from the local issuer."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import grpc
import pytest

from carenet.referral.v1 import referral_pb2
from carenet_client import (
    Carenet,
    CarenetError,
    ClientCredentials,
    PasswordLogin,
    RetryPolicy,
)
from testkit.idp import LocalIdp
from testkit.processes import ServiceProcess

DR_JANSEN = "be21ba23-a345-5af6-9768-5903b37b0418"  # dr.jansen's Keycloak user id (demo realm)

PROFILE = {
    "conditions": ["T90"],
    "age": 58,
    "bmi": 31.5,
    "postcode": "5612",
    "municipality_code": "GM0772",
}


def kis(platform: Any, idp: LocalIdp, **kwargs: Any) -> Carenet:
    """The KIS's own service account, acting for dr.jansen (the demo realm's delegate)."""
    return Carenet(
        credentials=ClientCredentials(idp.issuer, "carenet-kis", "carenet-kis-secret"),
        targets=platform.targets,
        on_behalf_of=DR_JANSEN,
        **kwargs,
    )


def insurer(platform: Any, idp: LocalIdp) -> Carenet:
    return Carenet(
        credentials=ClientCredentials(idp.issuer, "carenet-insurer", "carenet-insurer-secret"),
        targets=platform.targets,
    )


def test_find_offers_pages_through_every_match(platform: Any, local_idp: LocalIdp) -> None:
    with kis(platform, local_idp) as client:
        whole = [m.offer.name for m in client.referrals.find_offers(PROFILE)]
        paged = [m.offer.name for m in client.referrals.find_offers(PROFILE, page_size=1)]
        first_two = list(client.referrals.find_offers(PROFILE, page_size=1, limit=2))
    assert len(whole) >= 3
    assert paged == whole, "page after page gives the same ranked list as one page"
    assert len(set(paged)) == len(paged)
    assert [m.offer.name for m in first_two] == whole[:2]
    assert "offers/gli-beweegfit-cool" in whole


def test_a_kis_refers_for_its_clinician_and_a_retry_returns_the_first_referral(
    platform: Any, local_idp: LocalIdp
) -> None:
    request_id = f"kis-{uuid.uuid4()}"
    with kis(platform, local_idp) as client:
        first = client.referrals.create_referral(
            "p-0002",
            "offers/gm-eindhoven-wandelgroep",
            "walking group, agreed with the patient",
            profile={"age": 61, "postcode": "5612"},
            request_id=request_id,
        )
        again = client.referrals.create_referral(
            "p-0002",
            "offers/gm-eindhoven-wandelgroep",
            "walking group, agreed with the patient",
            profile={"age": 61, "postcode": "5612"},
            request_id=request_id,
        )
        listed = list(client.referrals.list_referrals("p-0002", page_size=1))
        mine = {r.name for r in listed}
    assert first.name.startswith("patients/p-0002/referrals/")
    assert again.name == first.name
    assert first.status == referral_pb2.REFERRAL_STATUS_REQUESTED
    assert first.referrer == DR_JANSEN, "the person the system acts for is the referrer"
    assert first.name in mine
    assert listed[0].name == first.name, "newest first"
    times = [(r.create_time.seconds, r.create_time.nanos) for r in listed]
    assert times == sorted(times, reverse=True)


def test_errors_carry_the_code_reason_metadata_and_field_violations(
    platform: Any, local_idp: LocalIdp
) -> None:
    with kis(platform, local_idp) as client:
        first = client.referrals.create_referral("p-0002", "gli-beweegfit-cool", "GLI")
        with pytest.raises(CarenetError) as duplicate:
            client.referrals.create_referral("p-0002", "gli-beweegfit-cool", "again")
        with pytest.raises(CarenetError) as invalid:
            client.referrals.create_referral("p-0001", "offers/", "")
    assert duplicate.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert duplicate.value.reason == "DUPLICATE_OPEN_REFERRAL"
    assert duplicate.value.domain == "referral.carenet"
    assert duplicate.value.metadata["existing_referral"] == first.name
    assert invalid.value.code == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in invalid.value.field_violations}
    assert fields & {"referral.offer", "referral.reason"}, fields
    assert "DUPLICATE_OPEN_REFERRAL" in str(duplicate.value)


def test_a_system_without_the_delegate_role_may_not_act_for_a_person(
    platform: Any, local_idp: LocalIdp
) -> None:
    client = Carenet(
        credentials=ClientCredentials(
            local_idp.issuer, "carenet-insurer", "carenet-insurer-secret"
        ),
        targets=platform.targets,
        on_behalf_of=DR_JANSEN,
    )
    with client, pytest.raises(CarenetError) as refused:
        list(client.outcomes.list_reports("vgz-zuidoost-2025"))
    assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused.value.reason == "ON_BEHALF_OF_NOT_ALLOWED"


def test_the_event_stream_resumes_after_a_cursor_and_follows_new_events(
    platform: Any, local_idp: LocalIdp
) -> None:
    with kis(platform, local_idp) as client:
        replay = list(client.referrals.watch_referral_events(0, follow=False))
        assert replay, "the demo referral's events"
        cursors = [e.cursor for e in replay]
        assert cursors == sorted(cursors)
        last = cursors[-1]
        assert list(client.referrals.watch_referral_events(last, follow=False)) == []

        seen: list[referral_pb2.ReferralEvent] = []
        stream = client.referrals.watch_referral_events(last)

        def follow() -> None:
            try:
                for event in stream:
                    seen.append(event)
                    return
            except CarenetError:
                return  # the channel closed before an event came: the assertion below says so

        watcher = threading.Thread(target=follow, daemon=True)
        watcher.start()
        time.sleep(0.5)
        created = client.referrals.create_referral(
            "p-0001", "offers/gm-eindhoven-wandelgroep", "walking group"
        )
        watcher.join(timeout=90)
    assert seen, "a followed stream delivers the event of a referral created after it opened"
    assert seen[0].referral == created.name
    assert seen[0].cursor > last


def test_care_plan_read_and_its_revisions(platform: Any, local_idp: LocalIdp) -> None:
    with kis(platform, local_idp) as client:
        plan = client.careplans.get_care_plan("p-0001")
        revisions = list(client.careplans.list_revisions("p-0001", page_size=1))
    assert plan.name == "patients/p-0001/carePlan"
    assert plan.etag
    assert len(revisions) >= 1


def test_measurements_ingest_counts_each_kind_of_row(platform: Any, local_idp: LocalIdp) -> None:
    from carenet.outcomes.v1 import outcomes_pb2, outcomes_service_pb2
    from carenet_client import timestamp

    def row(record: str, value: float, code: str = "HBA1C") -> Any:
        return outcomes_service_pb2.MeasurementRow(
            patient="patients/p-0001",
            code=code,
            value=value,
            unit="mmol/mol",
            measure_time=timestamp("2025-03-01T09:00:00+01:00"),
            source=outcomes_pb2.MeasurementSource(
                kind=outcomes_pb2.SOURCE_KIND_KIS, organisation="organisations/gp-de-linde"
            ),
            source_record_id=record,
        )

    base = f"client-test-{uuid.uuid4().hex[:8]}"
    seen: list[int] = []
    with kis(platform, local_idp) as client:
        first = client.outcomes.ingest_measurements(
            [row(f"{base}-1", 50), row(f"{base}-2", 51), row(f"{base}-3", 1, code="NOPE")],
            batch_size=2,
            progress=lambda sent, _: seen.append(sent),
        )
        second = client.outcomes.ingest_measurements([row(f"{base}-1", 50), row(f"{base}-2", 49)])
    assert (first.accepted, first.duplicates, first.corrected, first.rejected) == (2, 0, 0, 1)
    assert seen == [2, 3]
    assert [(r.row, r.reason) for r in first.results] == [(2, "UNKNOWN_CODE")], (
        "rows are numbered over the whole import, across batches"
    )
    assert (second.accepted, second.duplicates, second.corrected, second.rejected) == (0, 1, 1, 0)


def test_the_insurer_reads_reports_and_evaluates_its_contract(
    platform: Any, local_idp: LocalIdp
) -> None:
    with insurer(platform, local_idp) as client:
        reports = list(client.outcomes.list_reports("vgz-zuidoost-2025", page_size=1))
        assert reports
        cells = list(client.outcomes.stream_report(reports[0].name))
        evaluation = client.outcomes.evaluate_contract(
            "vgz-zuidoost-2025", "2025-01-01", "2026-01-01"
        )
    assert len(cells) == reports[0].cell_count
    assert evaluation.report.startswith("reports/")
    assert evaluation.evaluated_report.name == evaluation.report, "says which report it used"
    assert evaluation.lines


def test_an_expiring_token_is_fetched_again_before_it_is_used(
    platform: Any, local_idp: LocalIdp
) -> None:
    # a margin longer than the token's life: every call needs a fresh token
    source = ClientCredentials(
        local_idp.issuer, "carenet-kis", "carenet-kis-secret", refresh_margin=10**6
    )
    steady = ClientCredentials(local_idp.issuer, "carenet-kis", "carenet-kis-secret")
    for credentials in (source, steady):
        with Carenet(
            credentials=credentials, targets=platform.targets, on_behalf_of=DR_JANSEN
        ) as client:
            for _ in range(3):
                client.careplans.get_care_plan("p-0001")
    assert source.fetches == 3
    assert steady.fetches == 1


def test_a_person_logs_in_through_the_kis_client(platform: Any, local_idp: LocalIdp) -> None:
    login = PasswordLogin(
        local_idp.issuer, "carenet-kis", "carenet-kis-secret", "dr.jansen", "demo"
    )
    with Carenet(credentials=login, targets=platform.targets) as client:
        assert any(r.name.startswith("patients/p-0001/") for r in client.referrals.list_referrals())


def test_unavailable_is_retried_with_backoff_until_the_deadline(local_idp: LocalIdp) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    waits: list[float] = []
    client = Carenet(
        credentials=ClientCredentials(local_idp.issuer, "carenet-kis", "carenet-kis-secret"),
        targets={"careplan": f"127.0.0.1:{port}"},
        retry=RetryPolicy(max_attempts=4, initial_backoff=0.05, jitter=0),
        sleep=waits.append,
        timeout=10,
    )
    with client, pytest.raises(CarenetError) as down:
        client.careplans.get_care_plan("p-0001")
    assert down.value.code == grpc.StatusCode.UNAVAILABLE
    assert waits == [0.05, 0.1, 0.2], "three retries with doubling backoff, then the error"


def test_a_restarting_service_is_reached_by_retrying(platform: Any, local_idp: LocalIdp) -> None:
    process: ServiceProcess = platform.processes["careplan"]
    process.stop()
    restarted: list[ServiceProcess] = []

    def restart() -> None:
        time.sleep(1.0)
        restarted.append(ServiceProcess("careplan", process.env).start())

    threading.Thread(target=restart, daemon=True).start()
    try:
        with kis(
            platform, local_idp, retry=RetryPolicy(max_attempts=30, max_backoff=0.5), timeout=60
        ) as client:
            plan = client.careplans.get_care_plan("p-0001")
        assert plan.name == "patients/p-0001/carePlan"
    finally:
        for _ in range(100):
            if restarted:
                break
            time.sleep(0.2)
        if restarted:
            platform.processes["careplan"] = restarted[0]


def test_a_user_id_resolves_to_a_name_and_organisation(platform: Any, local_idp: LocalIdp) -> None:
    with kis(platform, local_idp) as client:
        people = client.identity.lookup_people([DR_JANSEN, "no-such-user", DR_JANSEN])
    assert list(people) == [DR_JANSEN], "unknown ids are left out, repeats answered once"
    person = people[DR_JANSEN]
    assert person.organisation == "organisations/gp-de-linde"
    assert person.display_name
    assert "gp" in person.roles


def test_a_followed_stream_survives_a_restart_of_the_service_without_losing_an_event(
    platform: Any, local_idp: LocalIdp
) -> None:
    retry = RetryPolicy(max_attempts=60, initial_backoff=0.1, max_backoff=0.5)
    with kis(platform, local_idp, retry=retry, timeout=60) as client:
        last = max(e.cursor for e in client.referrals.watch_referral_events(0, follow=False))
        seen: list[referral_pb2.ReferralEvent] = []
        stream = client.referrals.watch_referral_events(last)

        def follow() -> None:
            try:
                for event in stream:
                    seen.append(event)
                    return
            except CarenetError:
                return

        watcher = threading.Thread(target=follow, daemon=True)
        watcher.start()
        time.sleep(1.0)
        process: ServiceProcess = platform.processes["referral"]
        process.stop()
        platform.processes["referral"] = ServiceProcess("referral", process.env).start()
        created = client.referrals.create_referral(
            "p-0001", "offers/gli-beweegfit-dietist-groep", "nutrition course"
        )
        watcher.join(timeout=90)
    assert [e.referral for e in seen] == [created.name], "the stream reopened after its cursor"
    assert seen[0].cursor > last


def test_a_kis_lists_and_follows_its_practice_s_referrals_as_itself(
    platform: Any, local_idp: LocalIdp
) -> None:
    system = Carenet(
        credentials=ClientCredentials(local_idp.issuer, "carenet-kis", "carenet-kis-secret"),
        targets=platform.targets,
    )
    with system:
        listed = list(system.referrals.list_referrals())
        events = list(system.referrals.watch_referral_events(0, follow=False))
    assert listed, "the practice's referrals, with no person named"
    assert all(r.referrer_organisation == "organisations/gp-de-linde" or
               r.target_organisation == "organisations/gp-de-linde" for r in listed)  # fmt: skip
    assert events
