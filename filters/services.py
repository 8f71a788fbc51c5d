"""The filter language for every caller (list views, campaigns, the AI chat), the catalog and saved filters.

`filter_queryset` and `filter_matches` are the public entry points: both validate a tree
against the actor's tenant's catalog and raise `FilterError` (a 400 whose messages name the
path of each offending node) on a bad one.
"""

import datetime as dt
import zoneinfo
from http import HTTPStatus
from typing import Any, TypedDict, Unpack, cast

from django.core.cache import cache
from django.db import models, transaction
from django.db.models import Case, Max, Q, QuerySet, Value, When
from django.db.models.functions import Now
from django.utils import timezone

from crm.actor import Actor
from crm.errors import ApplicationError, Conflict, Forbidden
from crm.models import Membership, Role, SoftDeleteRecord, Tenant
from crm.records import record_assign, record_save
from filters.fields import ENTITY_MODELS, FieldSpec, Kind, custom_field_key, field_spec
from filters.language import (
    MAX_LIST,
    CatalogField,
    Compiled,
    FilterError,
    catalog_field_check,
    tree_compile,
    tree_validate,
)
from filters.models import EntityType, FieldType, FilterConfig, SavedFilter
from filters.operators import operators_for

SELECT_TYPES = (FieldType.SELECT, FieldType.MULTI_SELECT)

CATALOG_CACHE_SECONDS = 300


def _catalog_key(tenant_id: int, entity_type: str) -> str:
    return f"filters:catalog:v1:{tenant_id}:{entity_type}"


def catalog_fields(*, tenant: Tenant, entity_type: str) -> dict[str, CatalogField]:
    """The tenant's catalog for `entity_type`, by field name (cached; catalog services clear it)."""
    key = _catalog_key(tenant.pk, entity_type)
    cached = cache.get(key)
    if cached is not None:
        return {row[1]: CatalogField(*row) for row in cached}
    rows = list(
        FilterConfig.objects.filter(tenant=tenant, entity_type=entity_type).values_list(
            "id", "field_name", "field_label", "field_type", "is_active"
        )
    )
    cache.set(key, rows, CATALOG_CACHE_SECONDS)
    return {row[1]: CatalogField(*row) for row in rows}


def catalog_cache_clear(*, tenant_id: int, entity_type: str) -> None:
    """Forget the cached catalog now, and again once the transaction commits (a read in between
    may have cached the state from before the change)."""
    key = _catalog_key(tenant_id, entity_type)
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))


def _entity_check(entity_type: str) -> None:
    if entity_type not in EntityType.values:
        raise FilterError(
            f"entity_type: {entity_type!r} is not one of: {', '.join(EntityType.values)}", attr="entity_type"
        )


def filter_compile(*, actor: Actor, entity_type: str, tree: Any, now: dt.datetime | None = None) -> Compiled:
    """Validate `tree` for the actor's tenant and compile it to one Q.

    Relative dates resolve in the tenant's time zone at `now` (the current time by default);
    `"me"` is the actor's effective user. Raises FilterError listing every problem.
    """
    _entity_check(entity_type)
    tenant = actor.require_tenant()
    normalised, state = tree_validate(
        tree=tree, entity_type=entity_type, catalog=catalog_fields(tenant=tenant, entity_type=entity_type)
    )
    if not state.errors:
        _check_members(tenant=tenant, user_ids=state.user_ids, errors=state.errors)
        _check_substatuses(
            tenant=tenant, entity_type=entity_type, substatus_ids=state.substatus_ids, errors=state.errors
        )
        if actor.user is None and any(
            c.value == "me" or (isinstance(c.value, list) and "me" in c.value)
            for c in state.conditions
            if c.spec.kind == Kind.USER
        ):
            state.errors.append('filter: "me" needs a user, and this runs without one')
    if state.errors:
        raise FilterError(messages=state.errors, attr="filter")
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    return tree_compile(
        normalised=normalised,
        state=state,
        zone=zone,
        now=now or timezone.now(),
        user_id=actor.user.pk if actor.user is not None else None,
    )


def _check_members(*, tenant: Tenant, user_ids: dict[int, list[str]], errors: list[str]) -> None:
    """Users named by id must be members of the tenant (current or former: "assigned to Sam" outlives Sam)."""
    if not user_ids:
        return
    members = set(
        Membership.objects.filter(tenant=tenant, user_id__in=list(user_ids)).values_list("user_id", flat=True)
    )
    for user_id, paths in user_ids.items():
        if user_id not in members:
            errors.extend(f"{path}: user {user_id} is not a member of this tenant" for path in paths)


def _check_substatuses(
    *, tenant: Tenant, entity_type: str, substatus_ids: dict[int, list[str]], errors: list[str]
) -> None:
    if not substatus_ids:
        return
    model = ENTITY_MODELS[entity_type]
    substatus_model = cast(type[models.Model], model._meta.get_field("substatus").related_model)
    entity = "contact" if entity_type == EntityType.CONTACTS else "project"
    known = set(
        substatus_model._default_manager.filter(tenant=tenant, entity=entity, pk__in=list(substatus_ids)).values_list(
            "pk", flat=True
        )
    )
    for substatus_id, paths in substatus_ids.items():
        if substatus_id not in known:
            errors.extend(
                f"{path}: substatus {substatus_id} is not one of this tenant's {entity} substatuses" for path in paths
            )


def entity_queryset(*, tenant: Tenant, entity_type: str) -> QuerySet:
    """The tenant's live rows of `entity_type` (deleted contacts and projects left out)."""
    model = ENTITY_MODELS[entity_type]
    queryset = model._default_manager.filter(tenant=tenant)
    if issubclass(model, SoftDeleteRecord):
        queryset = queryset.filter(is_deleted=False)
    return queryset


def filter_queryset(*, actor: Actor, entity_type: str, tree: Any, now: dt.datetime | None = None) -> QuerySet:
    """The actor's tenant's live rows of `entity_type` that `tree` matches."""
    compiled = filter_compile(actor=actor, entity_type=entity_type, tree=tree, now=now)
    return entity_queryset(tenant=actor.require_tenant(), entity_type=entity_type).filter(compiled.q)


def filter_matches(
    *, actor: Actor, entity_type: str, tree: Any, record: models.Model, now: dt.datetime | None = None
) -> bool:
    """Whether `tree` matches `record` (one query: the same SQL as `filter_queryset`, so the same answer).

    A record of another tenant, or a deleted one, never matches.
    """
    if not isinstance(record, ENTITY_MODELS.get(entity_type, ())):
        raise ValueError(f"a {type(record).__name__} is not a record of {entity_type}")
    compiled = filter_compile(actor=actor, entity_type=entity_type, tree=tree, now=now)
    queryset = entity_queryset(tenant=actor.require_tenant(), entity_type=entity_type)
    return queryset.filter(pk=record.pk).filter(compiled.q).exists()


# The catalog -------------------------------------------------------------------------------

CONFIG_WRITABLE_FIELDS = frozenset(
    {
        "entity_type",
        "field_name",
        "field_label",
        "field_type",
        "filter_operator",
        "filter_options",
        "display_order",
        "is_quick_filter",
        "is_advanced_filter",
        "is_active",
    }
)


class FilterConfigFields(TypedDict, total=False):
    """CONFIG_WRITABLE_FIELDS, for filter_config_create and filter_config_update."""

    entity_type: str
    field_name: str
    field_label: str
    field_type: str
    filter_operator: str
    filter_options: list[dict[str, Any]]
    display_order: int
    is_quick_filter: bool
    is_advanced_filter: bool
    is_active: bool


def _options_check(config: FilterConfig, spec: FieldSpec) -> None:
    options = config.filter_options
    if not isinstance(options, list) or len(options) > MAX_LIST:
        raise ApplicationError(f"Expected a list of at most {MAX_LIST} options.", attr="filter_options")
    if options and config.field_type not in SELECT_TYPES:
        raise ApplicationError(
            f"Only {', '.join(SELECT_TYPES)} filters have options; a {config.field_type} filter has none.",
            attr="filter_options",
        )
    for index, option in enumerate(options):
        valid = (
            isinstance(option, dict)
            and set(option) <= {"value", "label", "color"}
            and isinstance(option.get("value"), str | int)
            and not isinstance(option.get("value"), bool)
            and isinstance(option.get("label"), str)
            and isinstance(option.get("color"), str | None)
        )
        if not valid:
            raise ApplicationError(
                f"Option {index}: expected {{value, label, color}} with text value and label.", attr="filter_options"
            )
    if spec.choices:
        outside = [option["value"] for option in options if option["value"] not in spec.choices]
        if outside:
            raise ApplicationError(
                f"{', '.join(map(str, outside))} not among {config.field_name}'s values: {', '.join(spec.choices)}.",
                attr="filter_options",
            )


def _config_check(config: FilterConfig) -> None:
    if config.entity_type not in EntityType.values:
        raise ApplicationError(f"Expected one of: {', '.join(EntityType.values)}.", attr="entity_type")
    if config.field_type not in FieldType.values:
        raise ApplicationError(f"Expected one of: {', '.join(FieldType.values)}.", attr="field_type")
    spec = catalog_field_check(
        entity_type=config.entity_type, field_name=config.field_name, field_type=config.field_type
    )
    allowed = operators_for(config.field_type, array=spec.kind == Kind.ARRAY)
    if config.filter_operator not in allowed:
        raise ApplicationError(
            f"{config.filter_operator!r} is not an operator of {config.field_type} filters; use one of: "
            f"{', '.join(allowed)}.",
            attr="filter_operator",
        )
    _options_check(config, spec)
    config.custom_field_id = custom_field_key(config.field_name)


def filter_config_create(*, actor: Actor, **fields: Unpack[FilterConfigFields]) -> FilterConfig:
    """Add a filter to the tenant's catalog (admins and owners: the caller checked the role)."""
    tenant = actor.require_tenant()
    config = FilterConfig(tenant=tenant, created_by=actor.user)
    record_assign(config, fields, allowed=CONFIG_WRITABLE_FIELDS)
    if not config.filter_operator and config.field_type and config.entity_type in EntityType.values:
        spec = field_spec(config.entity_type, config.field_name)
        if spec is not None:
            config.filter_operator = operators_for(config.field_type, array=spec.kind == Kind.ARRAY)[0]
    _config_check(config)
    if "display_order" not in fields:
        last = FilterConfig.objects.filter(tenant=tenant, entity_type=config.entity_type).aggregate(
            last=Max("display_order")
        )["last"]
        config.display_order = 0 if last is None else last + 1
    record_save(config, actor=actor)
    catalog_cache_clear(tenant_id=tenant.pk, entity_type=config.entity_type)
    return config


def filter_config_update(*, config: FilterConfig, actor: Actor, **fields: Unpack[FilterConfigFields]) -> FilterConfig:
    """Change a catalog entry; its entity and field stay (make a new entry for another field).

    Deactivating it or changing its type marks the saved filters that use it stale (database trigger).
    """
    for name in ("entity_type", "field_name"):
        if name in fields and fields[name] != getattr(config, name):
            raise ApplicationError(
                f"A filter's {name} stays what it is: add a new filter instead.", code="immutable", attr=name
            )
    changed = record_assign(config, fields, allowed=CONFIG_WRITABLE_FIELDS)
    _config_check(config)
    record_save(config, actor=actor, update_fields=[*changed, "custom_field_id", "updated_at"])
    catalog_cache_clear(tenant_id=config.tenant_id, entity_type=config.entity_type)
    return config


def filter_config_delete(*, config: FilterConfig, actor: Actor) -> None:
    """Remove a catalog entry; the saved filters using it are marked stale (database trigger), never deleted."""
    with actor.atomic():
        config.delete()
    catalog_cache_clear(tenant_id=config.tenant_id, entity_type=config.entity_type)


def filter_config_reorder(*, actor: Actor, entity_type: str, ids: list[int]) -> list[FilterConfig]:
    """Put every catalog entry of one entity in the given order (all of them, each once)."""
    tenant = actor.require_tenant()
    if entity_type not in EntityType.values:
        raise ApplicationError(f"Expected one of: {', '.join(EntityType.values)}.", attr="entity_type")
    if len(set(ids)) != len(ids):
        raise ApplicationError("Each filter appears once in the order.", code="duplicate", attr="ids")
    with actor.atomic():
        group = FilterConfig.objects.filter(tenant=tenant, entity_type=entity_type)
        present = set(group.select_for_update().order_by("pk").values_list("pk", flat=True))
        unknown = [pk for pk in ids if pk not in present]
        if unknown:
            raise ApplicationError(
                f"Unknown filter id(s) for {entity_type}: {unknown}.", code="does_not_exist", attr="ids"
            )
        missing = sorted(present - set(ids))
        if missing:
            raise ApplicationError(
                f"List every filter of {entity_type}; missing: {missing}.", code="incomplete", attr="ids"
            )
        group.update(
            display_order=Case(*(When(pk=pk, then=Value(order)) for order, pk in enumerate(ids))), updated_at=Now()
        )
    return list(group.order_by("display_order", "pk"))


# Saved filters -----------------------------------------------------------------------------

SAVED_WRITABLE_FIELDS = frozenset(
    {"entity_type", "name", "description", "filter_criteria", "sort", "columns", "is_shared", "is_default", "is_active"}
)


class SavedFilterFields(TypedDict, total=False):
    """SAVED_WRITABLE_FIELDS, for saved_filter_create and saved_filter_update."""

    entity_type: str
    name: str
    description: str
    filter_criteria: Any
    sort: str
    columns: list[str]
    is_shared: bool
    is_default: bool
    is_active: bool


class NotFound(ApplicationError):
    status_code = HTTPStatus.NOT_FOUND
    default_code = "not_found"


def actor_role(actor: Actor) -> Role:
    """The actor's role in its tenant (viewer when it has no membership there)."""
    if actor.user is None:
        return Role.VIEWER
    role = (
        Membership.objects.filter(tenant=actor.require_tenant(), user=actor.user).values_list("role", flat=True).first()
    )
    return Role(role) if role else Role.VIEWER


def saved_filter_can_edit(*, saved_filter: SavedFilter, actor: Actor, role: Role) -> bool:
    """Admins and owners edit every filter of the tenant; others their own, never a system one."""
    if role.at_least(Role.ADMIN):
        return True
    return not saved_filter.is_system and actor.user is not None and saved_filter.created_by_id == actor.user.pk


def _saved_check(saved_filter: SavedFilter, fields: SavedFilterFields, *, actor: Actor, role: Role) -> None:
    if "filter_criteria" in fields:
        compiled = filter_compile(actor=actor, entity_type=saved_filter.entity_type, tree=fields["filter_criteria"])
        saved_filter.filter_criteria = compiled.tree
        saved_filter.is_stale = False
        saved_filter.stale_reason = ""
    if saved_filter.is_system and not role.at_least(Role.ADMIN):
        raise Forbidden("Only admins and owners change system filters.")
    if saved_filter.is_system and (fields.get("is_default") or fields.get("is_shared") is False):
        raise ApplicationError(
            "A system filter stays shared and is nobody's default: duplicate it to make it yours.", attr="is_default"
        )
    if fields.get("is_default") and actor.user is not None and saved_filter.created_by_id not in (None, actor.user.pk):
        raise ApplicationError(
            "Only your own filter can be your default: duplicate this one first.", code="not_owner", attr="is_default"
        )


def _saved_save(saved_filter: SavedFilter, *, actor: Actor, changed: list[str] | None) -> SavedFilter:
    with actor.atomic():
        if saved_filter.is_default and (changed is None or "is_default" in changed):
            SavedFilter.objects.filter(
                tenant_id=saved_filter.tenant_id,
                created_by_id=saved_filter.created_by_id,
                entity_type=saved_filter.entity_type,
                is_default=True,
            ).exclude(pk=saved_filter.pk).update(is_default=False, updated_at=Now())
        return record_save(saved_filter, actor=actor, update_fields=changed)


def saved_filter_create(*, actor: Actor, **fields: Unpack[SavedFilterFields]) -> SavedFilter:
    """Save a filter tree (normalised) as the actor's own."""
    if actor.user is None:
        raise ApplicationError("A saved filter needs a user to own it.", code="no_user")
    entity_type = fields.get("entity_type", "")
    _entity_check(entity_type)
    if "filter_criteria" not in fields:
        raise ApplicationError("This field is required.", code="required", attr="filter_criteria")
    saved_filter = SavedFilter(tenant=actor.require_tenant(), created_by=actor.user, entity_type=entity_type)
    role = actor_role(actor)
    _saved_check(saved_filter, fields, actor=actor, role=role)
    record_assign(
        saved_filter, {k: v for k, v in fields.items() if k != "filter_criteria"}, allowed=SAVED_WRITABLE_FIELDS
    )
    return _saved_save(saved_filter, actor=actor, changed=None)


def saved_filter_update(*, saved_filter: SavedFilter, actor: Actor, **fields: Unpack[SavedFilterFields]) -> SavedFilter:
    """Change a saved filter the actor may edit; a valid new tree clears its stale mark."""
    role = actor_role(actor)
    if not saved_filter_can_edit(saved_filter=saved_filter, actor=actor, role=role):
        raise Forbidden("You can read this shared filter but not change it: duplicate it to make it yours.")
    if "entity_type" in fields and fields["entity_type"] != saved_filter.entity_type:
        raise ApplicationError("A saved filter stays on its entity.", code="immutable", attr="entity_type")
    _saved_check(saved_filter, fields, actor=actor, role=role)
    rest = {k: v for k, v in fields.items() if k != "filter_criteria"}
    changed = record_assign(saved_filter, rest, allowed=SAVED_WRITABLE_FIELDS)
    if "filter_criteria" in fields:
        changed += ["filter_criteria", "is_stale", "stale_reason"]
    return _saved_save(saved_filter, actor=actor, changed=[*changed, "updated_at"])


def saved_filter_delete(*, saved_filter: SavedFilter, actor: Actor) -> None:
    """Delete a saved filter; system filters are never deleted (admins deactivate them)."""
    if saved_filter.is_system:
        raise Conflict("System filters cannot be deleted; an admin can deactivate them.", code="system_filter")
    if not saved_filter_can_edit(saved_filter=saved_filter, actor=actor, role=actor_role(actor)):
        raise Forbidden("You can read this shared filter but not delete it.")
    with actor.atomic():
        saved_filter.delete()


def saved_filter_duplicate(*, saved_filter: SavedFilter, actor: Actor, name: str = "") -> SavedFilter:
    """The actor's own copy of a filter they can see (private, not their default)."""
    base = name or f"Copy of {saved_filter.name}"[:100]
    candidate, number = base, 2
    taken = set(
        SavedFilter.objects.filter(tenant_id=saved_filter.tenant_id, entity_type=saved_filter.entity_type).values_list(
            "name", flat=True
        )
    )
    while not name and candidate in taken:
        suffix = f" ({number})"
        candidate, number = base[: 100 - len(suffix)] + suffix, number + 1
    return saved_filter_create(
        actor=actor,
        entity_type=saved_filter.entity_type,
        name=candidate,
        description=saved_filter.description,
        filter_criteria=saved_filter.filter_criteria,
        sort=saved_filter.sort,
        columns=list(saved_filter.columns),
    )


def saved_filter_set_default(*, saved_filter: SavedFilter, actor: Actor) -> SavedFilter:
    """Make one of the actor's own filters the one their list opens with (replacing the previous one)."""
    if actor.user is None or saved_filter.created_by_id != actor.user.pk:
        raise ApplicationError(
            "Only your own filter can be your default: duplicate this one first.", code="not_owner", attr="is_default"
        )
    saved_filter.is_default = True
    return _saved_save(saved_filter, actor=actor, changed=["is_default", "updated_at"])


def saved_filter_for_apply(*, actor: Actor, role: Role, saved_filter_id: Any, entity_type: str) -> SavedFilter:
    """The saved filter a list request names: 404 when the actor cannot see it, 409 when it is stale
    or deactivated, 400 when it is for records of another kind."""
    try:
        pk = int(saved_filter_id)
    except (TypeError, ValueError):
        raise ApplicationError("Expected a saved filter id.", attr="saved_filter") from None
    saved_filter = saved_filters_visible(actor=actor, role=role).filter(pk=pk).first()
    if saved_filter is None:
        raise NotFound("No such saved filter.", attr="saved_filter")
    if ENTITY_MODELS[saved_filter.entity_type] is not ENTITY_MODELS[entity_type]:
        raise ApplicationError(
            f"This saved filter is for {saved_filter.entity_type}, not {entity_type}.", attr="saved_filter"
        )
    if saved_filter.is_stale:
        raise Conflict(
            f"This saved filter is stale: {saved_filter.stale_reason}", code="stale_filter", attr="saved_filter"
        )
    if not saved_filter.is_active:
        raise Conflict("This saved filter is deactivated.", code="inactive_filter", attr="saved_filter")
    return saved_filter


def saved_filters_visible(*, actor: Actor, role: Role) -> QuerySet[SavedFilter]:
    """Admins and owners see every saved filter of the tenant; others their own and the shared ones."""
    queryset = SavedFilter.objects.filter(tenant=actor.require_tenant())
    if role.at_least(Role.ADMIN):
        return queryset
    return queryset.filter(Q(is_shared=True) | Q(created_by=actor.user))
