"""The tools the assistant may call over the tenant's CRM data.

Each runs as the request's actor (the effective user when impersonating), in its tenant,
with the user's role: arguments go through the API's serializers and services, results
carry the fields the API shows that user, capped in size. A refusal or a bad argument is
the tool's result (`{"error": ...}`), returned to the model and stored, never a 500.
"""

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Window
from rest_framework import serializers

from contacts.models import Contact
from contacts.serializers import ContactSerializer
from crm.actor import Actor
from crm.errors import ApplicationError
from crm.models import Activity, Project, Role
from crm.search import prefix_search_query
from crm.serializers import ActivitySerializer, ProjectSerializer
from crm.services import activity_create
from filters.services import filter_queryset

CONTACT_FIELDS = (
    "id",
    "display_name",
    "is_organization",
    "company",
    "email",
    "phone",
    "mobile_phone",
    "type",
    "stage",
    "address_street",
    "address_city",
    "address_state",
    "assigned_to",
    "insurance_carrier",
    "claim_number",
    "updated_at",
)
# The columns those fields read (display_name: the names, company and email), so a search
# fetches and builds what it shows only.
CONTACT_COLUMNS = (*(name for name in CONTACT_FIELDS if name != "display_name"), "first_name", "last_name")
PROJECT_FIELDS = (
    "id",
    "name",
    "project_number",
    "status",
    "type",
    "contact",
    "estimated_value",
    "approved_value",
    "scheduled_start",
    "created_at",
    "updated_at",
)
ACTIVITY_FIELDS = (
    "id",
    "type",
    "subject",
    "content",
    "contact",
    "project",
    "outcome",
    "performed_by",
    "scheduled_at",
    "completed_at",
    "created_at",
)
WRITE_TYPES = (Activity.Type.NOTE, Activity.Type.TASK)


@dataclass(frozen=True)
class ToolContext:
    actor: Actor
    role: Role
    conversation_id: int


class ToolRefused(Exception):
    """The tool cannot do this for this user; the message goes back to the model."""


def _shown(data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: data[name] for name in fields if name in data}


@functools.cache
def _showing(serializer: type[serializers.ModelSerializer], fields: tuple[str, ...]) -> type[serializers.Serializer]:
    """The API's serializer limited to `fields`: rendering the rest only to drop it was most of a tool's time."""
    meta = type("Meta", (serializer.Meta,), {"fields": fields, "exclude": None})
    return type(f"{serializer.__name__}Shown", (serializer,), {"Meta": meta})


def _rows(
    serializer: type[serializers.ModelSerializer], rows: QuerySet | list[Any], fields: tuple[str, ...]
) -> list[dict[str, Any]]:
    return [_shown(item, fields) for item in _showing(serializer, fields)(rows, many=True).data]


def _validated(serializer: type[serializers.Serializer], arguments: dict[str, Any]) -> dict[str, Any]:
    checked = serializer(data=arguments)
    if not checked.is_valid():
        raise serializers.ValidationError(checked.errors)
    return dict(checked.validated_data)


def _contacts(context: ToolContext) -> QuerySet[Contact]:
    return Contact.objects.filter(tenant=context.actor.require_tenant(), is_deleted=False)


def _projects(context: ToolContext) -> QuerySet[Project]:
    return Project.objects.filter(tenant=context.actor.require_tenant(), is_deleted=False)


# search_contacts -----------------------------------------------------------------------------


class SearchContactsArguments(serializers.Serializer):
    query = serializers.CharField(max_length=200)
    limit = serializers.IntegerField(min_value=1, max_value=25, default=10)


def search_contacts(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    checked = _validated(SearchContactsArguments, arguments)
    query = prefix_search_query(checked["query"])
    if query is None:
        raise ToolRefused("query must contain a letter or a digit.")
    # The matches are sorted in full anyway (no index gives this order), so counting them in the
    # same query (a window over every match, before the LIMIT) saves the COUNT query's round trip.
    found = _contacts(context).filter(search=query).only(*CONTACT_COLUMNS).annotate(matches=Window(Count("pk")))
    rows = list(found.order_by("last_name", "first_name", "id")[: checked["limit"]])
    return {
        "count": rows[0].matches if rows else 0,
        "contacts": _rows(ContactSerializer, rows, CONTACT_FIELDS),
    }


# get_contact -------------------------------------------------------------------------------


class GetContactArguments(serializers.Serializer):
    id = serializers.IntegerField(min_value=1)


def get_contact(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    checked = _validated(GetContactArguments, arguments)
    contact = _contacts(context).filter(pk=checked["id"]).first()
    if contact is None:
        raise ToolRefused(f"There is no contact {checked['id']}.")
    recent = (
        Activity.objects.visible_to(context.actor.user)
        .filter(tenant=contact.tenant, contact=contact)
        .order_by("-created_at", "-id")[:5]
    )
    projects = _projects(context).filter(contact=contact).order_by("-created_at", "-id")[:10]
    return {
        "contact": _shown(ContactSerializer(contact).data, (*CONTACT_FIELDS, "address_zip", "roof_type", "source")),
        "projects": _rows(ProjectSerializer, projects, PROJECT_FIELDS),
        "recent_activities": _rows(ActivitySerializer, recent, ACTIVITY_FIELDS),
    }


# list_projects -------------------------------------------------------------------------------


class ListProjectsArguments(serializers.Serializer):
    status = serializers.ListField(child=serializers.ChoiceField(choices=Project.Status.choices), required=False)
    mine = serializers.BooleanField(default=False, help_text="Only jobs the user created or whose contact is theirs.")
    filter = serializers.JSONField(required=False, help_text="A filter tree of the filters app.")
    limit = serializers.IntegerField(min_value=1, max_value=50, default=20)


def list_projects(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    checked = _validated(ListProjectsArguments, arguments)
    projects = _projects(context)
    if "filter" in checked:
        matching = filter_queryset(actor=context.actor, entity_type="projects", tree=checked["filter"])
        projects = projects.filter(pk__in=matching.values("pk"))
    if checked.get("status"):
        projects = projects.filter(status__in=checked["status"])
    if checked["mine"]:
        user = context.actor.user
        projects = projects.filter(Q(created_by=user) | Q(contact__assigned_to=user))
    projects = projects.order_by("-created_at", "-id")
    rows = projects[: checked["limit"]]
    return {"count": projects.count(), "projects": _rows(ProjectSerializer, rows, PROJECT_FIELDS)}


# list_activities ----------------------------------------------------------------------------


class ListActivitiesArguments(serializers.Serializer):
    contact = serializers.IntegerField(min_value=1, required=False)
    project = serializers.IntegerField(min_value=1, required=False)
    type = serializers.ChoiceField(choices=Activity.Type.choices, required=False)
    since = serializers.DateTimeField(required=False, help_text="Only activities created at or after this time.")
    limit = serializers.IntegerField(min_value=1, max_value=50, default=20)


def list_activities(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    checked = _validated(ListActivitiesArguments, arguments)
    activities = Activity.objects.visible_to(context.actor.user).filter(tenant=context.actor.require_tenant())
    for name in ("contact", "project", "type"):
        if name in checked:
            activities = activities.filter(**{name: checked[name]})
    if "since" in checked:
        activities = activities.filter(created_at__gte=checked["since"])
    activities = activities.order_by("-created_at", "-id")
    rows = activities[: checked["limit"]]
    return {"count": activities.count(), "activities": _rows(ActivitySerializer, rows, ACTIVITY_FIELDS)}


# substatus_summary ----------------------------------------------------------------------------


class SubstatusSummaryArguments(serializers.Serializer):
    entity = serializers.ChoiceField(choices=["contact", "project"])


def substatus_summary(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    checked = _validated(SubstatusSummaryArguments, arguments)
    records: QuerySet = _contacts(context) if checked["entity"] == "contact" else _projects(context)
    status = "stage" if checked["entity"] == "contact" else "status"
    groups = (
        records.values(status, "substatus__key", "substatus__label")
        .annotate(records=Count("id"))
        .order_by(status, "substatus__label")
    )
    return {
        "entity": checked["entity"],
        "groups": [
            {
                "status": group[status],
                "substatus": group["substatus__key"],
                "label": group["substatus__label"] or "No substatus",
                "records": group["records"],
            }
            for group in groups
        ],
    }


# create_activity --------------------------------------------------------------------------


def create_activity(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    if not context.role.at_least(Role.MEMBER):
        raise ToolRefused(
            f"Your role ({context.role.value}) may only read: adding a note or a task needs the member role or above."
        )
    if arguments.get("type") not in WRITE_TYPES:
        raise serializers.ValidationError({"type": ["The assistant may only add a note or a task."]})
    # The API's serializer, scoped to the actor's tenant as a request would be.
    checked = ActivitySerializer(
        data=arguments, context={"request": SimpleNamespace(tenant=context.actor.require_tenant())}
    )
    if not checked.is_valid():
        raise serializers.ValidationError(checked.errors)
    fields = dict(checked.validated_data)
    fields["outcome_details"] = {**fields.get("outcome_details", {}), "ai_conversation": context.conversation_id}
    activity = activity_create(actor=context.actor, **fields)
    return {"created": _shown(ActivitySerializer(activity).data, (*ACTIVITY_FIELDS, "on_behalf_of"))}


# The registry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    run: Callable[[ToolContext, dict[str, Any]], dict[str, Any]]

    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or []}


_LIMIT = {"type": "integer", "minimum": 1}
TOOLS = {
    tool.name: tool
    for tool in [
        Tool(
            "search_contacts",
            "Find contacts (people and companies) by name, company, email or phone.",
            _object({"query": {"type": "string"}, "limit": _LIMIT}, ["query"]),
            search_contacts,
        ),
        Tool(
            "get_contact",
            "One contact with its jobs and latest activities.",
            _object({"id": {"type": "integer"}}, ["id"]),
            get_contact,
        ),
        Tool(
            "list_projects",
            "Roofing jobs, newest first: by status, the user's own (mine), and/or a filter tree.",
            _object(
                {
                    "status": {"type": "array", "items": {"type": "string", "enum": list(Project.Status.values)}},
                    "mine": {"type": "boolean"},
                    "filter": {"type": "object", "description": "A filter tree, as saved filters use."},
                    "limit": _LIMIT,
                }
            ),
            list_projects,
        ),
        Tool(
            "list_activities",
            "Calls, emails, texts, meetings, notes and tasks, newest first.",
            _object(
                {
                    "contact": {"type": "integer"},
                    "project": {"type": "integer"},
                    "type": {"type": "string", "enum": list(Activity.Type.values)},
                    "since": {"type": "string", "format": "date-time"},
                    "limit": _LIMIT,
                }
            ),
            list_activities,
        ),
        Tool(
            "substatus_summary",
            "How many live contacts or jobs are in each status and substatus.",
            _object({"entity": {"type": "string", "enum": ["contact", "project"]}}, ["entity"]),
            substatus_summary,
        ),
        Tool(
            "create_activity",
            "Add a note or a task on a contact and/or a job, as the user.",
            _object(
                {
                    "type": {"type": "string", "enum": list(WRITE_TYPES)},
                    "contact": {"type": "integer"},
                    "project": {"type": "integer"},
                    "subject": {"type": "string"},
                    "content": {"type": "string"},
                    "scheduled_at": {"type": "string", "format": "date-time"},
                },
                ["type"],
            ),
            create_activity,
        ),
    ]
}
TOOL_SCHEMAS = [tool.schema() for tool in TOOLS.values()]


def _error_text(errors: Any) -> str:
    if isinstance(errors, dict):
        return "; ".join(f"{field}: {_error_text(value)}" for field, value in errors.items())
    if isinstance(errors, list):
        return " ".join(_error_text(item) for item in errors)
    return str(errors)


def _capped(result: dict[str, Any]) -> dict[str, Any]:
    """The result, leaving off the last rows of its longest list while it is too long."""
    while len(json.dumps(result, default=str)) > settings.AI_TOOL_RESULT_MAX_CHARS:
        lists = [key for key, value in result.items() if isinstance(value, list) and value]
        if not lists:
            return {"error": "The result is too large to show."}
        longest = max(lists, key=lambda key: len(result[key]))
        result = {**result, longest: result[longest][:-1], "truncated": True}
    return result


def tool_run(context: ToolContext, name: str, raw_arguments: str) -> dict[str, Any]:
    """Run one tool call; a refusal or invalid arguments come back as `{"error": ...}`."""
    tool = TOOLS.get(name)
    if tool is None:
        return {"error": f"There is no tool named {name!r}; the tools are {', '.join(TOOLS)}."}
    try:
        arguments = json.loads(raw_arguments or "{}")
    except ValueError as exc:
        return {"error": f"The arguments are not valid JSON: {exc}."}
    if not isinstance(arguments, dict):
        return {"error": "The arguments must be a JSON object."}
    try:
        return _capped(json.loads(json.dumps(tool.run(context, arguments), default=str)))
    except ToolRefused as exc:
        return {"error": str(exc)}
    except serializers.ValidationError as exc:
        return {"error": f"Invalid arguments: {_error_text(exc.detail)}"}
    except ApplicationError as exc:  # a service's refusal: every problem it found, and the field it names
        return {"error": "; ".join(exc.messages), "field": exc.attr}
