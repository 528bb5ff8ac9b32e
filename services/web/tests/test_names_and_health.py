"""Unit tests (no service) of names for ids, goal measures in words, and readiness: the
organisation names are kept per care group for the TTL and asked for together; what identity
does not name shows as the id; a measure the platform knows reads in the page's language;
/readyz asks the session store and the issuer's metadata, never the services."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from flask import Flask
from flask_babel import force_locale

from carenet.careplan.v1 import careplan_pb2 as cp
from carenet.identity.v1 import identity_pb2 as idp
from web import auth, measures, names
from web.backend import Metadata


class _Error(grpc.RpcError):
    """A call's error as the client raises it: its code (no status details)."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return ""


class _Failed:
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def result(self, timeout: float | None = None) -> Any:
        raise _Error(self._code)


class _Done:
    def __init__(self, value: Any) -> None:
        self._value = value

    def result(self, timeout: float | None = None) -> Any:
        return self._value


class _GetOrganisation:
    def __init__(self, known: dict[str, str], down: set[str]) -> None:
        self.known = known
        self.down = down
        self.asked: list[str] = []

    def future(self, request: Any, metadata: Any, timeout: float) -> Any:
        org = request.name.removeprefix("organisations/")
        self.asked.append(org)
        if org in self.down:
            return _Failed(grpc.StatusCode.UNAVAILABLE)
        if org not in self.known:
            return _Failed(grpc.StatusCode.NOT_FOUND)
        return _Done(idp.Organisation(name=request.name, display_name=self.known[org]))


class _Stub:
    def __init__(self, known: dict[str, str], down: frozenset[str] = frozenset()) -> None:
        self.GetOrganisation = _GetOrganisation(known, set(down))


NO_METADATA: Callable[[], Metadata] = tuple


def _clock() -> tuple[Callable[[], float], list[float]]:
    now = [1000.0]
    return (lambda: now[0]), now


def test_organisation_names_are_kept_per_care_group_for_the_ttl() -> None:
    stub = _Stub({"gp-de-linde": "Huisartsenpraktijk De Linde", "gm-eindhoven": "Gemeente"})
    clock, now = _clock()
    cache = names.OrganisationNames(stub, ttl=60, deadline=1, clock=clock)  # type: ignore[arg-type]
    found = cache.resolve(
        "cg-zuidoost", NO_METADATA, ["organisations/gp-de-linde", "gm-eindhoven", "gone"]
    )
    assert found == {
        "gp-de-linde": "Huisartsenpraktijk De Linde",
        "gm-eindhoven": "Gemeente",
        "gone": "gone",  # unknown to identity: the id, no error
    }
    assert sorted(stub.GetOrganisation.asked) == ["gm-eindhoven", "gone", "gp-de-linde"]
    again = cache.resolve("cg-zuidoost", NO_METADATA, ["gp-de-linde", "gone"])
    assert again == {"gp-de-linde": "Huisartsenpraktijk De Linde", "gone": "gone"}
    assert len(stub.GetOrganisation.asked) == 3  # nothing asked again within the TTL
    cache.resolve("cg-other", NO_METADATA, ["gp-de-linde"])
    assert len(stub.GetOrganisation.asked) == 4  # another care group asks for itself
    now[0] += 61
    cache.resolve("cg-zuidoost", NO_METADATA, ["gp-de-linde"])
    assert len(stub.GetOrganisation.asked) == 5  # expired: asked again


def test_an_unreachable_identity_shows_the_id_and_is_asked_again() -> None:
    stub = _Stub({"gp-de-linde": "De Linde"}, down=frozenset({"gp-de-linde"}))
    cache = names.OrganisationNames(stub, ttl=60, deadline=1)  # type: ignore[arg-type]
    assert cache.resolve("cg", NO_METADATA, ["gp-de-linde"]) == {"gp-de-linde": "gp-de-linde"}
    stub.GetOrganisation.down.clear()
    assert cache.resolve("cg", NO_METADATA, ["gp-de-linde"]) == {"gp-de-linde": "De Linde"}
    assert cache.resolve("cg", NO_METADATA, ["not an id!"]) == {}  # never asked about


def test_people_are_asked_about_only_by_user_id() -> None:
    class People:
        asked: list[list[str]] = []

        def LookupPeople(self, request: Any, metadata: Any, timeout: float) -> Any:  # noqa: N802
            self.asked.append(list(request.users))
            from carenet.identity.v1 import identity_service_pb2 as id_rpc

            return id_rpc.LookupPeopleResponse(
                people=[id_rpc.PersonSummary(user=request.users[0], display_name="Eva Jansen")]
            )

    stub = People()
    user = "be21ba23-a345-5af6-9768-5903b37b0418"
    assert names.people(stub, NO_METADATA, 1, ["dr. Jansen", "POH Bakker"]) == {}  # type: ignore[arg-type]
    assert stub.asked == []  # typed names: no call
    assert names.people(stub, NO_METADATA, 1, [user, "dr. Jansen", user]) == {user: "Eva Jansen"}  # type: ignore[arg-type]
    assert stub.asked == [[user]]


def test_goal_measures_read_in_the_page_language(app: Flask) -> None:
    walk = cp.GoalTarget(measure="minutes walked a day", low=30, unit="min/d")
    hba1c = cp.GoalTarget(measure="HBA1C", high=53, unit="mmol/mol")
    own = cp.GoalTarget(measure="Trap op zonder stoppen")
    with app.test_request_context("/"), force_locale("nl"):
        assert measures.target(walk) == "Minuten wandelen per dag: minstens 30 minuten per dag"
        assert measures.target(hba1c) == (
            "HbA1c (gemiddelde bloedsuiker): niet meer dan 53 mmol/mol"
        )
        assert measures.measure("Body weight") == "Gewicht"
        assert measures.target(own) == "Trap op zonder stoppen"  # free text as written
        assert measures.unit("{status}") == ""
    # a page is in one language: English in a request of its own
    with app.test_request_context("/"), force_locale("en"):
        assert measures.target(walk) == "Minutes walked a day: at least 30 minutes a day"
        assert measures.measure("hba1c") == "HbA1c (average blood sugar)"


def test_every_code_of_the_outcomes_code_table_has_a_dutch_name() -> None:
    import json

    table = Path(__file__).resolve().parents[3] / "services/outcomes/src/outcomes/codes.json"
    for entry in json.loads(table.read_text())["codes"]:
        for text in (entry["code"], entry["display"]):
            assert measures.MEASURES.get(text.casefold()) is not None, text


def test_readiness_asks_the_session_store_and_the_issuer_not_the_services(app: Flask) -> None:
    client = app.test_client()
    # the services at 127.0.0.1:9 answer nothing; the issuer there neither
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json == {
        "status": "unavailable",
        "checks": {"sessions": "ok", "issuer": "unreachable"},
    }
    metadata = auth.oauth.carenet.server_metadata
    metadata["_loaded_at"] = 1.0  # as Authlib marks metadata it has fetched
    try:
        response = client.get("/readyz")
        assert response.status_code == 200, response.json
        assert response.json == {"status": "ok", "checks": {"sessions": "ok", "issuer": "ok"}}

        class Broken:
            def set(self, *args: Any, **kwargs: Any) -> bool:
                raise OSError("read-only file system")

        store = app.config["SESSION_CACHELIB"]
        app.config["SESSION_CACHELIB"] = Broken()
        try:
            response = client.get("/readyz")
        finally:
            app.config["SESSION_CACHELIB"] = store
        assert response.status_code == 503
        assert (response.json or {})["checks"]["sessions"] == "failing"
        assert client.get("/healthz").status_code == 200
    finally:
        metadata.pop("_loaded_at", None)


def test_ranking_reasons_and_conditions_read_as_words(app: Flask) -> None:
    from carenet.referral.v1 import referral_pb2 as rf
    from web.views.verwijzen import outcome_text, reason_text

    age = rf.Predicate(field=rf.PROFILE_FIELD_AGE, operator=rf.OPERATOR_GE, number=18)
    with app.test_request_context("/"), force_locale("nl"):
        assert reason_text("eligible +100") == "voldoet aan de voorwaarden"
        assert reason_text("targets T90 +20") == "bedoeld voor T90"
        assert reason_text("capacity waitlist +10") == "wachtlijst"
        assert reason_text("recognised effective-good-evidence +15") == (
            "erkend: Effectief (goede aanwijzingen)"
        )
        assert reason_text("something new +3") == "something new"  # unknown: as sent
        met = rf.PredicateOutcome(predicate=age, satisfied=True, explanation="age 58 >= 18: yes")
        assert outcome_text(met) == "Ja: leeftijd minstens 18"
        unknown = rf.PredicateOutcome(predicate=age, satisfied=False, explanation="age unknown")
        assert outcome_text(unknown) == "Niet bekend: leeftijd minstens 18"


def test_the_compact_chart_keeps_suppressed_cells_marked() -> None:
    from web import charts

    svg = str(
        charts.bar_chart(
            "c2",
            "HbA1c",
            "three groups",
            [
                charts.Bar("Huisartsenpraktijk De Linde", 42.5, 30.0, 55.0),
                charts.Bar("Het Anker", None, suppressed_text="x"),
                charts.Bar("Nieuw", None, suppressed_text="-", empty=True),
            ],
            compact=True,
        )
    )
    assert 'viewBox="0 0 360 ' in svg and "carenet-chart--compact" in svg
    assert svg.count("<rect") == 1
    assert 'class="carenet-chart__suppressed">x</text>' in svg
    assert 'class="carenet-chart__empty">-</text>' in svg  # no patients: not a suppression


def test_access_log_entries_that_say_the_same_are_one_line_with_a_count() -> None:
    from google.protobuf.timestamp_pb2 import Timestamp

    from web.views.privacy import _grouped

    def entry(
        second: int, user: str, action: idp.Action.ValueType = idp.ACTION_READ
    ) -> idp.AccessLogEntry:
        return idp.AccessLogEntry(
            event_time=Timestamp(seconds=1_800_000_000 + second),
            user=user,
            organisation="organisations/gm-eindhoven",
            data_category=idp.DATA_CATEGORY_REFERRAL,
            action=action,
            decision=idp.DECISION_PERMIT,
        )

    rows = _grouped(
        [
            entry(5, "a"),
            entry(4, "a"),
            entry(3, "a", idp.ACTION_UPDATE),
            entry(2, "a"),
            entry(1, "b"),
        ]
    )
    assert [(e.user, e.action, n) for e, n in rows] == [
        ("a", idp.ACTION_READ, 2),
        ("a", idp.ACTION_UPDATE, 1),  # another action: a line of its own, order kept
        ("a", idp.ACTION_READ, 1),
        ("b", idp.ACTION_READ, 1),
    ]
