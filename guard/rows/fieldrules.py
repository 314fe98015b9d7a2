"""What a model says its values may be, beyond the column's type: per field, the range and the
allowed values that its validators and its simple check constraints give.

Real rows were saved through forms and code that honour ``MinValueValidator(0)``,
``MaxValueValidator(10)`` or ``CheckConstraint(condition=Q(kind__in=[...]))``; generated rows
must too, or a migration that relies on them (a copy of a 0-10 score into a ``decimal(3, 1)``)
fails on values no real row holds. Only what can be read for sure is taken: AND-ed lookups of
one field against constants (``exact``, ``in``, ``gt``, ``gte``, ``lt``, ``lte``); anything
else is left to the database, which refuses a row that breaks it (and the generator then tries
ordinary values).

Fields whose default is a callable (``uuid.uuid4``, ``timezone.now``) and UUID fields get a
value of their own in every row, as real rows do: a new ``unique=True`` on them is safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db.models import Field, Model

    AnyField = Field[Any, Any]

_NUMBERS = (int, float, Decimal)


@dataclass
class Rule:
    """What one field's values may be; None where nothing is known."""

    low: Any = None
    low_open: bool = False
    """``gt``: the value must be above ``low``, not equal to it."""
    high: Any = None
    high_open: bool = False
    allowed: list[Any] | None = None
    max_length: int | None = None
    distinct: bool = False
    """Every row gets a value of its own (not repeated), though the column is not unique."""
    not_null: bool = False

    def narrow(self, low: Any = None, high: Any = None, *, low_open: bool = False,
               high_open: bool = False) -> None:
        if low is not None and (self.low is None or low > self.low
                                or (low == self.low and low_open)):
            self.low, self.low_open = low, low_open
        if high is not None and (self.high is None or high < self.high
                                 or (high == self.high and high_open)):
            self.high, self.high_open = high, high_open

    def allow(self, values: list[Any]) -> None:
        self.allowed = values if self.allowed is None else [
            v for v in self.allowed if v in values]


@dataclass
class Rules:
    by_field: dict[str, Rule] = field(default_factory=dict)

    def get(self, name: str) -> Rule:
        return self.by_field.setdefault(name, Rule())


def rules(model: type[Model]) -> Rules:
    """Each concrete field's rule, from its validators, its default and the model's check
    constraints."""
    from django.db.models import CheckConstraint

    found = Rules()
    for item in model._meta.concrete_fields:
        rule = found.get(item.name)
        _from_validators(item, rule)
        if (item.has_default() and callable(item.default)) or _kind(item) == "UUIDField":
            rule.distinct = True
    for constraint in model._meta.constraints:
        if not isinstance(constraint, CheckConstraint):
            continue
        # Django 5.1 renamed check= to condition=; 4.2 has only check.
        condition = getattr(constraint, "condition", None) or getattr(constraint, "check", None)
        if condition is not None:
            _from_condition(condition, model, found)
    return found


def _kind(item: AnyField) -> str:
    return str(item.get_internal_type())


def _limit(validator: Any) -> Any:
    value = validator.limit_value
    return value() if callable(value) else value


def _from_validators(item: AnyField, rule: Rule) -> None:
    from django.core import validators

    for validator in getattr(item, "validators", ()):
        if isinstance(validator, validators.MinValueValidator):
            limit = _limit(validator)
            if isinstance(limit, _NUMBERS):
                rule.narrow(low=limit)
        elif isinstance(validator, validators.MaxValueValidator):
            limit = _limit(validator)
            if isinstance(limit, _NUMBERS):
                rule.narrow(high=limit)
        elif isinstance(validator, validators.MaxLengthValidator):
            limit = _limit(validator)
            if isinstance(limit, int):
                rule.max_length = min(limit, rule.max_length or limit)


def _from_condition(condition: Any, model: type[Model], found: Rules) -> None:
    """AND-ed lookups of one field against constants; anything else is left alone."""
    from django.db.models import Q

    if not isinstance(condition, Q) or condition.negated or condition.connector != Q.AND:
        return
    names = {f.name: f.name for f in model._meta.concrete_fields}
    names.update({f.attname: f.name for f in model._meta.concrete_fields})
    for child in condition.children:
        if isinstance(child, Q):
            _from_condition(child, model, found)
            continue
        if not isinstance(child, tuple) or len(child) != 2:
            continue
        lookup, value = child
        name, _, operator = str(lookup).partition("__")
        if name not in names or "__" in operator:
            continue
        rule = found.get(names[name])
        operator = operator or "exact"
        if operator == "exact" and not hasattr(value, "resolve_expression"):
            if value is None:
                continue
            rule.allow([value])
        elif operator == "in" and isinstance(value, (list, tuple, set, frozenset)):
            if not any(hasattr(v, "resolve_expression") for v in value):
                rule.allow([v for v in value if v is not None])
        elif operator in ("gt", "gte") and isinstance(value, _NUMBERS):
            rule.narrow(low=value, low_open=operator == "gt")
        elif operator in ("lt", "lte") and isinstance(value, _NUMBERS):
            rule.narrow(high=value, high_open=operator == "lt")
        elif operator == "isnull" and value is False:
            rule.not_null = True
