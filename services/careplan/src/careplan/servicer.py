"""gRPC adapter of the careplan service: proto in, use case, proto out. No try/except:
domain errors are mapped by the error interceptor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from carenet.careplan.v1 import careplan_pb2 as pb
from carenet.careplan.v1 import careplan_service_pb2 as rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as rpc_grpc
from careplan import coordination
from careplan import models as m
from careplan.deps import Deps
from careplan.use_cases import plan_items, plans, revisions
from careplan.use_cases.plan_items import ACTION, EVALUATION_MOMENT, GOAL, Edit, Kind, Op
from servicekit import names
from servicekit.auth import current_principal, organisation_name
from servicekit.enums import EnumMap
from servicekit.errors import InvalidArgument
from servicekit.idempotency import IdempotentRequest
from servicekit.paging import Paging
from servicekit.timestamps import field_from_request, to_proto

# Plan messages kept for reuse (one per patient, like the repository's plan cache).
MAX_MESSAGES = 20_000

# Proto enums <-> model enums, by naming convention (CARE_PLAN_STATUS_ON_HOLD <-> on-hold).
PLAN_STATUS = EnumMap(pb.CarePlanStatus, m.PlanStatus)
LIFECYCLE = EnumMap(pb.GoalLifecycleStatus, m.GoalLifecycle)
ACHIEVEMENT = EnumMap(pb.GoalAchievementStatus, m.GoalAchievement)
ACTIVITY = EnumMap(pb.ActivityStatus, m.ActivityStatus)
KIND = EnumMap(pb.ActionKind, m.ActionKind)
PARTICIPANT_ROLE = EnumMap(pb.ParticipantRole, m.ParticipantRole)


# ---------------------------------------------------------------- from proto


def content_from_pb(plan: pb.CarePlan) -> m.PlanContent:
    p = "care_plan"
    prep = plan.consult_preparation
    return m.PlanContent(
        status=PLAN_STATUS.from_proto(plan.status, f"{p}.status"),
        what_matters=list(plan.what_matters),
        conditions=[
            m.Condition(id=c.id, code=c.code, system=c.system, display=c.display)
            for c in plan.conditions
        ],
        participants=[
            m.Participant(
                id=x.id,
                role=PARTICIPANT_ROLE.from_proto(x.role, f"{p}.participants[{i}].role"),
                organisation=names.optional_id(
                    x.organisation, "organisations", f"{p}.participants[{i}].organisation"
                ),
                persons=list(x.persons),
            )
            for i, x in enumerate(plan.participants)
        ],
        informal_carers=[
            m.InformalCarer(id=c.id, user=c.user, display_name=c.display_name)
            for c in plan.informal_carers
        ],
        goals=[_goal(g, f"{p}.goals[{i}]") for i, g in enumerate(plan.goals)],
        actions=[_action(a, f"{p}.actions[{i}]") for i, a in enumerate(plan.actions)],
        evaluations=[
            _evaluation(e, f"{p}.evaluations[{i}]") for i, e in enumerate(plan.evaluations)
        ],
        consult_preparation=m.ConsultPreparation(
            topics=list(prep.topics),
            questions=list(prep.questions),
            agenda=list(prep.agenda),
            next_consult_time=field_from_request(
                prep, "next_consult_time", f"{p}.consult_preparation.next_consult_time"
            ),
        ),
    )


def _goal(g: pb.Goal, prefix: str) -> m.Goal:
    target = None
    if g.HasField("target"):
        t = g.target
        target = m.GoalTarget(
            measure=t.measure,
            low=t.low if t.HasField("low") else None,
            high=t.high if t.HasField("high") else None,
            unit=t.unit,
            due_time=field_from_request(t, "due_time", f"{prefix}.target.due_time"),
        )
    return m.Goal(
        id=g.id,
        description=g.description,
        target=target,
        lifecycle_status=LIFECYCLE.from_proto(g.lifecycle_status, f"{prefix}.lifecycle_status"),
        achievement_status=ACHIEVEMENT.from_proto(
            g.achievement_status, f"{prefix}.achievement_status"
        ),
        owner=g.owner,
        addresses=list(g.addresses),
        notes=g.notes,
        progress=[
            m.ProgressEntry(
                id=e.id,
                text=e.text,
                value=e.value if e.HasField("value") else None,
                achievement_status=ACHIEVEMENT.from_proto(
                    e.achievement_status, f"{prefix}.progress[{j}].achievement_status"
                ),
            )
            for j, e in enumerate(g.progress)
        ],
    )


def _action(a: pb.Action, prefix: str) -> m.Action:
    return m.Action(
        id=a.id,
        description=a.description,
        kind=KIND.from_proto(a.kind, f"{prefix}.kind"),
        status=ACTIVITY.from_proto(a.status, f"{prefix}.status"),
        responsible_organisation=names.optional_id(
            a.responsible_organisation, "organisations", f"{prefix}.responsible_organisation"
        ),
        responsible_person=a.responsible_person,
        schedule=a.schedule,
        due_time=field_from_request(a, "due_time", f"{prefix}.due_time"),
        referral=a.referral,
        goals=list(a.goals),
    )


def _evaluation(e: pb.EvaluationMoment, prefix: str) -> m.EvaluationMoment:
    return m.EvaluationMoment(
        id=e.id,
        review_time=field_from_request(e, "review_time", f"{prefix}.review_time"),
        outcome=e.outcome,
        organisation=names.optional_id(e.organisation, "organisations", f"{prefix}.organisation"),
    )


# Fields of an item message that a change does not take (the name says which item; the
# rest are written by the service).
NOT_CHANGED = frozenset({"id", "progress", "create_time", "referral_state"})


def _changed_fields(request: Any, field: str) -> list[str]:
    """An item update's mask (AIP-134): the paths named, else the fields set in the item."""
    if request.update_mask.paths:
        return list(request.update_mask.paths)
    item = getattr(request, field)
    return [f.name for f, _ in item.ListFields() if f.name not in NOT_CHANGED]


def _item_name(name: str, collection: str) -> tuple[str, str]:
    """The patient and item ids of ``patients/{patient}/carePlan/{collection}/{item}``."""
    plan, sep, item_id = name.rpartition(f"/{collection}/")
    if not sep or not plan.endswith("/carePlan") or not names.valid_id(item_id):
        raise InvalidArgument.single(
            "name",
            f"must look like patients/{{id}}/carePlan/{collection}/{{id}}",
            "INVALID_RESOURCE_NAME",
        )
    return _plan_patient(plan), item_id


# ---------------------------------------------------------------- to proto


def plan_pb(view: m.PlanView) -> pb.CarePlan:
    c = view.content
    prep = c.consult_preparation
    return pb.CarePlan(
        name=f"patients/{view.patient_id}/carePlan",
        patient=f"patients/{view.patient_id}",
        status=pb.CarePlanStatus.ValueType(PLAN_STATUS.to_proto(c.status)),
        what_matters=c.what_matters,
        conditions=[
            pb.Condition(id=x.id, code=x.code, system=x.system, display=x.display)
            for x in c.conditions
        ],
        participants=[
            pb.Participant(
                id=x.id,
                role=pb.ParticipantRole.ValueType(PARTICIPANT_ROLE.to_proto(x.role)),
                organisation=organisation_name(x.organisation),
                persons=x.persons,
            )
            for x in c.participants
        ],
        informal_carers=[
            pb.InformalCarer(
                id=x.id,
                user=x.user,
                display_name=x.display_name,
                mandate_time=to_proto(x.mandate_time),
            )
            for x in c.informal_carers
        ],
        goals=[_goal_pb(g) for g in c.goals],
        actions=[_action_pb(a) for a in c.actions],
        evaluations=[
            pb.EvaluationMoment(
                id=e.id,
                review_time=to_proto(e.review_time),
                outcome=e.outcome,
                organisation=organisation_name(e.organisation),
            )
            for e in c.evaluations
        ],
        consult_preparation=pb.ConsultPreparation(
            topics=prep.topics,
            questions=prep.questions,
            agenda=prep.agenda,
            next_consult_time=to_proto(prep.next_consult_time),
        ),
        record_holder=organisation_name(view.record_holder_id),
        version=view.version,
        create_time=to_proto(view.create_time),
        update_time=to_proto(view.update_time),
        etag=view.etag,
    )


def _goal_pb(g: m.Goal) -> pb.Goal:
    target = None
    if g.target is not None:
        t = g.target
        target = pb.GoalTarget(
            measure=t.measure, low=t.low, high=t.high, unit=t.unit, due_time=to_proto(t.due_time)
        )
    return pb.Goal(
        id=g.id,
        description=g.description,
        target=target,
        lifecycle_status=pb.GoalLifecycleStatus.ValueType(LIFECYCLE.to_proto(g.lifecycle_status)),
        achievement_status=pb.GoalAchievementStatus.ValueType(
            ACHIEVEMENT.to_proto(g.achievement_status)
        ),
        owner=g.owner,
        addresses=g.addresses,
        notes=g.notes,
        progress=[
            pb.ProgressEntry(
                id=e.id,
                text=e.text,
                value=e.value,
                achievement_status=pb.GoalAchievementStatus.ValueType(
                    ACHIEVEMENT.to_proto(e.achievement_status)
                ),
                author=e.author,
                record_time=to_proto(e.record_time),
            )
            for e in g.progress
        ],
        create_time=to_proto(g.create_time),
    )


def _action_pb(a: m.Action) -> pb.Action:
    state = None
    if a.referral_state is not None:
        s = a.referral_state
        state = pb.LinkedReferralState(
            status=s.status,
            business_status=s.business_status,
            enrolment=s.enrolment,
            feedback_summary=s.feedback_summary,
            update_time=to_proto(s.update_time),
        )
    return pb.Action(
        id=a.id,
        description=a.description,
        kind=pb.ActionKind.ValueType(KIND.to_proto(a.kind)),
        status=pb.ActivityStatus.ValueType(ACTIVITY.to_proto(a.status)),
        responsible_organisation=organisation_name(a.responsible_organisation),
        responsible_person=a.responsible_person,
        schedule=a.schedule,
        due_time=to_proto(a.due_time),
        referral=a.referral,
        referral_state=state,
        goals=a.goals,
    )


def revision_pb(r: revisions.Revision) -> pb.CarePlanRevision:
    return pb.CarePlanRevision(
        name=f"patients/{r.patient_id}/carePlan/revisions/{r.version}",
        version=r.version,
        author=r.author,
        organisation=organisation_name(r.organisation_id),
        create_time=to_proto(r.create_time),
        change_summary=r.change_summary,
        changed_fields=r.changed_fields,
    )


def _plan_patient(name: str, field: str = "name") -> str:
    """The patient id of ``patients/{patient}/carePlan``."""
    if not name.endswith("/carePlan"):
        raise InvalidArgument.single(
            field, "must look like patients/{id}/carePlan", "INVALID_RESOURCE_NAME"
        )
    return names.parse_one(name.removesuffix("/carePlan"), "patients", field=field)


# The collection of each kind of item in its resource name.
COLLECTIONS = {GOAL: "goals", ACTION: "actions", EVALUATION_MOMENT: "evaluations"}


def _item_rpc(kind: Kind, op: Op, convert: Callable[[Any, str], Any]) -> Callable[..., pb.CarePlan]:
    """The servicer method of one item edit: the request's names and item converted (proto
    stops here), then :func:`careplan.use_cases.plan_items.edit_item`."""

    def rpc_method(
        self: CarePlanServicer, request: Any, context: grpc.ServicerContext
    ) -> pb.CarePlan:
        if op is Op.CREATE:
            patient_id, item_id = _plan_patient(request.parent, "parent"), ""
        else:
            patient_id, item_id = _item_name(request.name, COLLECTIONS[kind])
        item, fields = None, None
        if op is not Op.DELETE:
            item = convert(getattr(request, kind.field), kind.field)
            item_id = item_id or item.id
        if op is Op.UPDATE:
            fields = _changed_fields(request, kind.field)
        coordination.remember_caller(context)
        principal = current_principal()
        edit = Edit(kind, op, item_id, item, fields)
        view = plan_items.edit_item(
            self.deps,
            principal,
            patient_id,
            edit,
            request.etag,
            IdempotentRequest.from_message(principal, request, edit.method),
        )
        return plan_pb(view)

    rpc_method.__name__ = f"{op.value}{kind.noun}"
    return rpc_method


class CarePlanServicer(rpc_grpc.CarePlanServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        # The message of each plan last answered, with the (shared, unchanging) view it was
        # built from: a plan read again at the same version is not converted again.
        self._messages: dict[str, tuple[m.PlanView, pb.CarePlan]] = {}

    def _plan_message(self, view: m.PlanView) -> pb.CarePlan:
        known = self._messages.get(view.patient_id)
        if known is not None and known[0] is view:
            return known[1]
        message = plan_pb(view)
        if len(self._messages) >= MAX_MESSAGES:
            self._messages.clear()
        self._messages[view.patient_id] = (view, message)
        return message

    def CreateCarePlan(
        self, request: rpc.CreateCarePlanRequest, context: grpc.ServicerContext
    ) -> pb.CarePlan:
        coordination.remember_caller(context)
        patient_id = names.parse_one(request.parent, "patients", field="parent")
        principal = current_principal()
        view = plans.create_care_plan(
            self.deps,
            principal,
            patient_id,
            content_from_pb(request.care_plan),
            IdempotentRequest.from_message(principal, request, plans.CREATE_METHOD),
            coordination.forwarded(context.invocation_metadata()),
        )
        return plan_pb(view)

    def GetCarePlan(
        self, request: rpc.GetCarePlanRequest, context: grpc.ServicerContext
    ) -> pb.CarePlan:
        coordination.remember_caller(context)
        patient_id = _plan_patient(request.name)
        return self._plan_message(
            plans.get_care_plan(self.deps, current_principal(), patient_id, request.version)
        )

    def UpdateCarePlan(
        self, request: rpc.UpdateCarePlanRequest, context: grpc.ServicerContext
    ) -> pb.CarePlan:
        coordination.remember_caller(context)
        patient_id = _plan_patient(request.care_plan.name, "care_plan.name")
        view = plans.update_care_plan(
            self.deps,
            current_principal(),
            patient_id,
            content_from_pb(request.care_plan),
            list(request.update_mask.paths),
            request.care_plan.etag,
        )
        return plan_pb(view)

    def ListCarePlanRevisions(
        self, request: rpc.ListCarePlanRevisionsRequest, context: grpc.ServicerContext
    ) -> rpc.ListCarePlanRevisionsResponse:
        coordination.remember_caller(context)
        patient_id = _plan_patient(request.parent, "parent")
        paging = Paging(request, "revisions", patient_id, position=revisions.POSITION)
        page = revisions.list_revisions(self.deps, current_principal(), patient_id, paging.page)
        return paging.reply(
            rpc.ListCarePlanRevisionsResponse, "care_plan_revisions", page, revision_pb
        )

    # ------------------------------------------------------------ one item at a time
    # Create<Item>, Update<Item> and Delete<Item> for goals, actions and evaluation moments:
    # each names the plan (Create: ``parent``) or the item (``name``), carries the plan's
    # etag and an optional request_id, and is one plan_items.Edit.

    CreateGoal = _item_rpc(GOAL, Op.CREATE, _goal)
    UpdateGoal = _item_rpc(GOAL, Op.UPDATE, _goal)
    DeleteGoal = _item_rpc(GOAL, Op.DELETE, _goal)
    CreateAction = _item_rpc(ACTION, Op.CREATE, _action)
    UpdateAction = _item_rpc(ACTION, Op.UPDATE, _action)
    DeleteAction = _item_rpc(ACTION, Op.DELETE, _action)
    CreateEvaluationMoment = _item_rpc(EVALUATION_MOMENT, Op.CREATE, _evaluation)
    UpdateEvaluationMoment = _item_rpc(EVALUATION_MOMENT, Op.UPDATE, _evaluation)
    DeleteEvaluationMoment = _item_rpc(EVALUATION_MOMENT, Op.DELETE, _evaluation)
