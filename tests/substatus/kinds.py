"""The two kinds of records with substatuses, and the write paths the rules must hold on."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, models, transaction
from rest_framework.test import APIClient

from contacts.models import Contact
from crm.models import Project, Tenant
from substatus.models import SubstatusConfig, SubstatusHistory


@dataclass(frozen=True)
class Kind:
    """Contacts or projects: their status column and two statuses with two substatuses each."""

    entity: str
    model: type[models.Model]
    status_field: str
    first: str
    second: str
    defaults: dict[str, str]  # status -> key of its default substatus in the catalog
    others: dict[str, str]  # status -> key of another substatus
    name_field: str
    required: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    @property
    def url(self) -> str:
        return f"/api/v1/{self.table}/"

    def __str__(self) -> str:
        return self.entity


CONTACT = Kind(
    entity="contact",
    model=Contact,
    status_field="stage",
    first="new",
    second="qualified",
    defaults={"new": "uncontacted", "qualified": "decision_maker_identified"},
    others={"new": "attempting_contact", "qualified": "budget_approved"},
    name_field="first_name",
    required={"first_name": "Dana"},
)
PROJECT = Kind(
    entity="project",
    model=Project,
    status_field="status",
    first="estimate",
    second="approved",
    defaults={"estimate": "site_visit_pending", "approved": "contract_signed"},
    others={"estimate": "measurements_taken", "approved": "deposit_received"},
    name_field="name",
    required={"name": "Roof replacement"},
)
KINDS = [CONTACT, PROJECT]


def config(tenant: Tenant, kind: Kind, key: str) -> SubstatusConfig:
    """A substatus of the tenant's default catalog (keys are unique within an entity there)."""
    return SubstatusConfig.objects.get(tenant=tenant, entity=kind.entity, key=key)


def state(kind: Kind, pk: int) -> tuple[str, str | None]:
    """The record's status and the key of its substatus, as the database holds them."""
    record = kind.model._default_manager.select_related("substatus").get(pk=pk)
    substatus = record.substatus  # type: ignore[attr-defined]
    return getattr(record, kind.status_field), substatus.key if substatus else None


def history(kind: Kind, pk: int) -> list[tuple[str | None, str, str | None, str | None]]:
    """(from status, to status, from key, to key) of a record's history, oldest first."""
    rows = (
        SubstatusHistory.objects.filter(entity=kind.entity, record_id=pk)
        .select_related("from_substatus", "to_substatus")
        .order_by("changed_at", "id")
    )
    return [
        (
            row.from_status,
            row.to_status,
            row.from_substatus.key if row.from_substatus else None,
            row.to_substatus.key if row.to_substatus else None,
        )
        for row in rows
    ]


class Refused(Exception):
    """A write the rules refused, with the code the path reported (constraint name or API code)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@contextmanager
def database_refusal() -> Iterator[None]:
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        raise Refused(exc.__cause__.diag.constraint_name) from exc  # type: ignore[union-attr]


class Path:
    """One way of writing records. `changes` name the status field, `substatus` and/or the name field."""

    name: str

    def __init__(self, tenant: Tenant, client: APIClient) -> None:
        self.tenant, self.client = tenant, client

    def insert(self, kind: Kind, status: str, substatus: SubstatusConfig | None = None) -> int:
        raise NotImplementedError

    def update(self, kind: Kind, pk: int, **changes: Any) -> None:
        raise NotImplementedError

    def refusal(self, constraint: str) -> str:
        """The code this path reports for a substatus the database refuses as `constraint`."""
        return constraint

    def values(self, kind: Kind, status: str, substatus: SubstatusConfig | None) -> dict[str, Any]:
        values = {**kind.required, kind.status_field: status}
        if substatus is not None:
            values["substatus"] = substatus
        return values

    def __str__(self) -> str:
        return self.name


class SavePath(Path):
    name = "save()"

    def insert(self, kind: Kind, status: str, substatus: SubstatusConfig | None = None) -> int:
        record = kind.model(tenant=self.tenant, **self.values(kind, status, substatus))
        with database_refusal():
            record.save()
        return record.pk

    def update(self, kind: Kind, pk: int, **changes: Any) -> None:
        record = kind.model._default_manager.get(pk=pk)
        for name, value in changes.items():
            setattr(record, name, value)
        with database_refusal():
            record.save()  # every column, the substatus as it was read included


class BulkPath(Path):
    name = "bulk_create()/bulk_update()"

    def insert(self, kind: Kind, status: str, substatus: SubstatusConfig | None = None) -> int:
        record = kind.model(tenant=self.tenant, **self.values(kind, status, substatus))
        with database_refusal():
            kind.model._default_manager.bulk_create([record])
        return record.pk

    def update(self, kind: Kind, pk: int, **changes: Any) -> None:
        record = kind.model._default_manager.get(pk=pk)
        for name, value in changes.items():
            setattr(record, name, value)
        with database_refusal():
            kind.model._default_manager.bulk_update([record], list(changes))


class QuerySetPath(Path):
    name = "objects.create()/queryset.update()"

    def insert(self, kind: Kind, status: str, substatus: SubstatusConfig | None = None) -> int:
        with database_refusal():
            return kind.model._default_manager.create(tenant=self.tenant, **self.values(kind, status, substatus)).pk

    def update(self, kind: Kind, pk: int, **changes: Any) -> None:
        with database_refusal():
            kind.model._default_manager.filter(pk=pk).update(**changes)


class SqlPath(Path):
    name = "raw SQL"

    @staticmethod
    def column(name: str) -> str:
        return "substatus_id" if name == "substatus" else name

    @staticmethod
    def value(value: Any) -> Any:
        return value.pk if isinstance(value, SubstatusConfig) else value

    def insert(self, kind: Kind, status: str, substatus: SubstatusConfig | None = None) -> int:
        values = {"tenant_id": self.tenant.pk, **self.values(kind, status, substatus)}
        columns = ", ".join(self.column(name) for name in values)
        placeholders = ", ".join(["%s"] * len(values))
        with database_refusal(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {kind.table} ({columns}) VALUES ({placeholders}) RETURNING id",  # noqa: S608
                [self.value(value) for value in values.values()],
            )
            return cursor.fetchone()[0]

    def update(self, kind: Kind, pk: int, **changes: Any) -> None:
        assignments = ", ".join(f"{self.column(name)} = %s" for name in changes)
        with database_refusal(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {kind.table} SET {assignments} WHERE id = %s",  # noqa: S608
                [*(self.value(value) for value in changes.values()), pk],
            )


class ApiPath(Path):
    name = "API"

    @staticmethod
    def body(values: dict[str, Any]) -> dict[str, Any]:
        return {name: value.pk if isinstance(value, SubstatusConfig) else value for name, value in values.items()}

    @staticmethod
    def outcome(response: Any, expected: int) -> Any:
        if response.status_code == 400:
            errors = response.json()["errors"]
            assert [error["attr"] for error in errors] == ["substatus"], errors
            raise Refused(errors[0]["code"])
        assert response.status_code == expected, response.content
        return response.json()

    def insert(self, kind: Kind, status: str, substatus: SubstatusConfig | None = None) -> int:
        response = self.client.post(kind.url, self.body(self.values(kind, status, substatus)))
        return self.outcome(response, 201)["id"]

    def update(self, kind: Kind, pk: int, **changes: Any) -> None:
        self.outcome(self.client.patch(f"{kind.url}{pk}/", self.body(changes)), 200)

    def refusal(self, constraint: str) -> str:
        # The API never reveals another tenant's row: it "does not exist" (like a missing one).
        return "does_not_exist" if constraint.endswith(("_other_tenant", "_unknown")) else constraint


PATHS = [SavePath, BulkPath, QuerySetPath, SqlPath, ApiPath]
