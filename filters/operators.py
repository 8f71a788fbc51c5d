"""The old system's operator names and which field types allow which."""

from filters.models import FieldType


class Op:
    EQUALS = "equals"
    NOT_EQUALS = "not_equals"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    GREATER_THAN = "greater_than"
    GREATER_THAN_OR_EQUAL = "greater_than_or_equal"
    LESS_THAN = "less_than"
    LESS_THAN_OR_EQUAL = "less_than_or_equal"
    BETWEEN = "between"
    IN = "in"
    NOT_IN = "not_in"
    IS_NULL = "is_null"
    IS_NOT_NULL = "is_not_null"
    ANY_OF = "any_of"
    ALL_OF = "all_of"
    NONE_OF = "none_of"
    TODAY = "today"
    YESTERDAY = "yesterday"
    LAST_N_DAYS = "last_n_days"
    NEXT_N_DAYS = "next_n_days"
    THIS_WEEK = "this_week"
    LAST_WEEK = "last_week"
    THIS_MONTH = "this_month"
    LAST_MONTH = "last_month"
    THIS_QUARTER = "this_quarter"
    THIS_YEAR = "this_year"


NULL_OPS = (Op.IS_NULL, Op.IS_NOT_NULL)
TEXT_OPS = (
    Op.EQUALS,
    Op.NOT_EQUALS,
    Op.CONTAINS,
    Op.NOT_CONTAINS,
    Op.STARTS_WITH,
    Op.ENDS_WITH,
    Op.IN,
    Op.NOT_IN,
    *NULL_OPS,
)
SELECT_OPS = (Op.EQUALS, Op.NOT_EQUALS, Op.IN, Op.NOT_IN, *NULL_OPS)
ARRAY_OPS = (Op.ANY_OF, Op.ALL_OF, Op.NONE_OF, *NULL_OPS)
COMPARE_OPS = (
    Op.EQUALS,
    Op.NOT_EQUALS,
    Op.GREATER_THAN,
    Op.GREATER_THAN_OR_EQUAL,
    Op.LESS_THAN,
    Op.LESS_THAN_OR_EQUAL,
    Op.BETWEEN,
)
NUMBER_OPS = (*COMPARE_OPS, Op.IN, Op.NOT_IN, *NULL_OPS)
# Relative dates: no value, except the two that take a number of days.
RELATIVE_OPS = (
    Op.TODAY,
    Op.YESTERDAY,
    Op.LAST_N_DAYS,
    Op.NEXT_N_DAYS,
    Op.THIS_WEEK,
    Op.LAST_WEEK,
    Op.THIS_MONTH,
    Op.LAST_MONTH,
    Op.THIS_QUARTER,
    Op.THIS_YEAR,
)
DATE_OPS = (*COMPARE_OPS, *NULL_OPS, *RELATIVE_OPS)
BOOLEAN_OPS = (Op.EQUALS, Op.NOT_EQUALS, *NULL_OPS)
USER_OPS = SELECT_OPS

# Operators that take no value, a list of values, or a [low, high] pair.
NO_VALUE_OPS = frozenset({*NULL_OPS, *RELATIVE_OPS}) - {Op.LAST_N_DAYS, Op.NEXT_N_DAYS}
DAYS_OPS = frozenset({Op.LAST_N_DAYS, Op.NEXT_N_DAYS})
LIST_OPS = frozenset({Op.IN, Op.NOT_IN, Op.ANY_OF, Op.ALL_OF, Op.NONE_OF})
# Operators that also match rows whose value is NULL (or empty): "not assigned to Sam" includes unassigned.
NEGATED_OPS = frozenset({Op.NOT_EQUALS, Op.NOT_IN, Op.NONE_OF, Op.NOT_CONTAINS})


def operators_for(field_type: str, *, array: bool) -> tuple[str, ...]:
    """The operators a catalog entry of `field_type` allows (`array`: its column is a text array)."""
    if array:
        return ARRAY_OPS
    by_type: dict[str, tuple[str, ...]] = {
        FieldType.TEXT: TEXT_OPS,
        FieldType.SELECT: SELECT_OPS,
        FieldType.MULTI_SELECT: SELECT_OPS,
        FieldType.DATE: DATE_OPS,
        FieldType.DATE_RANGE: DATE_OPS,
        FieldType.NUMBER: NUMBER_OPS,
        FieldType.NUMBER_RANGE: NUMBER_OPS,
        FieldType.BOOLEAN: BOOLEAN_OPS,
        FieldType.USER_SELECT: USER_OPS,
        FieldType.TAG_SELECT: ARRAY_OPS,
    }
    return by_type[field_type]
