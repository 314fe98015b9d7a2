"""Values for one column of one generated row, fitted to the historical field.

Rows are made to look like the data a deploy meets, not like the empty tables of a test run:
row 0 holds the edge of what the field allows (the longest string ``max_length`` allows, in
non-ASCII text; the largest number; the latest date), row 1 the other edge (NULL where NULL is
allowed, the empty string where ``blank`` is, the smallest number), row 2 repeats row 0 in every
column that need not be unique (duplicates are what a new ``unique=True`` trips over), and the
rows after those ordinary values. A column that must be unique gets a different value in every
row instead.

Every value comes from ``random.Random`` seeded with the run's data seed, the model, the field
and the row, so that one seed gives the same rows again whatever else the project holds.
"""

from __future__ import annotations

import datetime
import math
import random
import uuid
import zlib
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from guard.rows.fieldrules import Rule

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import Field

    AnyField = Field[Any, Any]

TEXT = "Ünïcode-17 ñandú 中文 "
"""Non-ASCII text, in every generated string that may hold it (and a cast to int fails on)."""
TEXT_LENGTH = 120
"""How long a string is where the field sets no ``max_length`` (``TextField``)."""


class CannotMake(Exception):
    """No value of this field can be made: a type migration-guard does not know."""


class Exhausted(ValueError):
    """A unique column has no more distinct values (a unique boolean, a unique choice)."""


def rng_for(seed: int, model: str, field: str, row: int) -> random.Random:
    return random.Random(f"{seed}:{model}:{field}:{row}")


def kind(field: AnyField) -> str:
    """The field's type as Django names it for the backend; ``CI...`` fields as their base."""
    internal = str(field.get_internal_type())
    return internal[2:] if internal.startswith("CI") else internal


def capacity(field: AnyField) -> int | None:
    """How many distinct values the field can hold, when that is few; None for many."""
    choices = _choices(field)
    if choices:
        return len(choices)
    if kind(field) in ("BooleanField", "NullBooleanField"):
        return 2
    return None


def value(field: AnyField, row: int, *, unique: bool, seed: int, model: str,
          connection: BaseDatabaseWrapper, plain: bool = False, rule: Rule | None = None) -> Any:
    """The value of ``field`` in generated row ``row`` (``plain``: an ordinary value, for a row
    whose edge values the database refused); ``rule``: what the model says the values may be
    (:mod:`guard.rows.fieldrules`)."""
    rule = rule or Rule()
    if not unique and not rule.distinct and not plain and row == 2:
        row = 0  # the repeated row
    if plain:
        row += 3
    if row == 1 and field.null and not field.primary_key and not rule.not_null:
        return None
    rng = rng_for(seed, model, field.name, row)
    choices = _choices(field)
    if rule.allowed is not None:
        choices = [c for c in choices if c in rule.allowed] if choices else list(rule.allowed)
        if not choices:
            raise CannotMake(f"field {field.name}: no value meets its check constraint")
    if choices:
        if unique:
            if row >= len(choices):
                raise Exhausted(field.name)
            return choices[row]
        return choices[{0: 0, 1: -1}.get(row, rng.randrange(len(choices)))]
    if getattr(field, "width_field", None) or getattr(field, "height_field", None):
        return ""  # an image: else Django opens the file to read its size when the row is made
    make = (_BY_DB_TYPE.get(_db_type(field, connection)) or _by_class(field, _FORMATS)
            or _MAKERS.get(kind(field)) or _by_class(field, _MAKERS))
    if make is None:
        if field.has_default():
            return field.get_default()
        raise CannotMake(
            f"field {field.name} is a {type(field).__name__} (type {kind(field)!r}), "
            "which migration-guard cannot make values for"
        )
    mark = f"{row}-{zlib.crc32(model.encode()) % 4096:03x}-" if unique else ""
    return make(field, row, mark, rng, connection, rule)


def _db_type(field: AnyField, connection: BaseDatabaseWrapper) -> str:
    """The column's PostgreSQL type, without its parameters; empty when the field cannot say."""
    try:
        found = field.db_type(connection)
    except Exception:  # a third-party field's own code
        return ""
    return str(found or "").split("(")[0].strip().lower()


def _by_class(field: AnyField, makers: Mapping[str, Maker]) -> Maker | None:
    """The maker of the field's class or the nearest of its bases in ``makers``: for a field
    whose values have a format its type does not tell (an ``EmailField`` is a ``CharField`` to
    the backend, and its validator accepts only addresses), or a subclass of a known field whose
    type is its own class name (a subclass of ``ArrayField``, which names no type of its own)."""
    for cls in type(field).__mro__:
        if cls.__name__ in makers:
            return makers[cls.__name__]
    return None


def _choices(field: AnyField) -> list[Any]:
    if not field.choices:
        return []
    found: list[Any] = []
    for key, label in field.choices:
        if isinstance(label, (list, tuple)):  # a named group
            found.extend(k for k, _ in label)
        else:
            found.append(key)
    return [c for c in found if c is not None and c != ""] or found


Maker = Callable[["AnyField", int, str, random.Random, "BaseDatabaseWrapper", Rule], Any]
"""(field, row, mark, rng, connection, rule): ``mark`` is empty unless the column is unique, else
a prefix that differs between rows and models."""


def _text(field: AnyField, row: int, mark: str, rng: random.Random, _c: Any, rule: Rule
          ) -> str:
    limit = min(field.max_length or TEXT_LENGTH, rule.max_length or TEXT_LENGTH * 10)
    if row == 1 and field.blank:
        return ""
    if row == 0:  # the longest string the column holds
        body = (mark + TEXT * (limit // len(TEXT) + 1))[:limit]
    elif row == 1:
        body = mark + "a"
    else:
        body = f"{mark}{TEXT.split()[0][:-2]}{rng.randint(10, 99)}"
    return body[:limit]


def _ascii(prefix: str, suffix: str = "") -> Maker:
    def make(field: AnyField, row: int, mark: str, rng: random.Random, _c: Any, rule: Rule
             ) -> str:
        limit = min(field.max_length or TEXT_LENGTH, rule.max_length or TEXT_LENGTH * 10)
        if row == 1 and field.blank:
            return ""
        middle = f"{mark}{rng.randint(10, 99)}" if mark or row > 2 else "0"
        text = f"{prefix}{middle}"
        if row == 0:
            text += "x" * max(0, limit - len(text) - len(suffix))
        return (text[: max(1, limit - len(suffix))] + suffix)[:limit]

    return make


def _bounds(low: Any, high: Any, rule: Rule, step: Any) -> tuple[Any, Any]:
    """The field's range narrowed to the rule's (``step``: the smallest difference, for an open
    bound); the field's own when the rule leaves nothing."""
    lo, hi = low, high
    if rule.low is not None:
        lo = max(lo, rule.low + (step if rule.low_open else 0))
    if rule.high is not None:
        hi = min(hi, rule.high - (step if rule.high_open else 0))
    return (lo, hi) if lo <= hi else (low, high)


def _integer(field: AnyField, row: int, mark: str, rng: random.Random,
             connection: BaseDatabaseWrapper, rule: Rule) -> int:
    low, high = connection.ops.integer_field_range(kind(field))
    low, high = _bounds(-(2**63) if low is None else int(low),
                        2**63 - 1 if high is None else int(high), rule, 1)
    low, high = math.ceil(low), math.floor(high)
    if row == 0:
        return int(high)
    if row == 1:
        return int(low)
    if mark:
        return int(min(max(low, 0) + row, high))
    return rng.randint(max(low, min(1, high)), max(min(high, 1000), max(low, min(1, high))))


def _decimal(field: AnyField, row: int, mark: str, rng: random.Random, _c: Any, rule: Rule
             ) -> Decimal:
    digits = getattr(field, "max_digits", None) or 12
    places = getattr(field, "decimal_places", None) or 0
    quantum = Decimal(10) ** -places
    whole = 10 ** (digits - places) - 1
    largest = (Decimal(whole) + (1 - quantum if places else 0)).quantize(quantum)
    low, high = _bounds(-largest, largest, rule, quantum)
    low, high = Decimal(low).quantize(quantum), Decimal(high).quantize(quantum)
    if row == 0:
        return high
    if row == 1:
        return low
    number = Decimal(row if mark else rng.randint(1, max(1, min(whole, 1000))))
    if places:
        number += Decimal(rng.randint(0, 10**places - 1)) * quantum
    return min(max(number, low), high).quantize(quantum)


def _float(field: AnyField, row: int, mark: str, rng: random.Random, _c: Any, rule: Rule
           ) -> float:
    low, high = _bounds(-float(2**53), float(2**53), rule, 1e-9)
    low, high = float(low), float(high)
    if row in (0, 1):
        return high if row == 0 else low
    number = row + rng.random() if mark else round(rng.uniform(1, 1000), 3)
    return min(max(number, low), high)


def _boolean(field: AnyField, row: int, mark: str, rng: random.Random, _c: Any, _r: Rule
             ) -> bool:
    if mark:
        if row > 1:
            raise Exhausted(field.name)
        return row == 0
    return {0: True, 1: False}.get(row, rng.random() < 0.5)


_EPOCH = datetime.date(1970, 1, 1)
_LATEST = datetime.date(2038, 1, 19)


def _date(field: AnyField, row: int, mark: str, rng: random.Random, _c: Any, _r: Rule
          ) -> datetime.date:
    if row in (0, 1):
        return _LATEST if row == 0 else _EPOCH
    return datetime.date(2000, 1, 1) + datetime.timedelta(days=row if mark else
                                                          rng.randint(0, 9000))


def _datetime(field: AnyField, row: int, mark: str, rng: random.Random, _c: Any, _r: Rule
              ) -> datetime.datetime:
    from django.conf import settings

    day = _date(field, row, mark, rng, _c, _r)
    moment = datetime.datetime.combine(
        day, datetime.time(3, 14, 7, 999999) if row == 0 else
        datetime.time(0, 0) if row == 1 else datetime.time(rng.randint(0, 23), rng.randint(0, 59)),
    )
    return moment.replace(tzinfo=datetime.timezone.utc) if settings.USE_TZ else moment


def _time(field: AnyField, row: int, mark: str, rng: random.Random, _c: Any, _r: Rule
          ) -> datetime.time:
    if row in (0, 1):
        return datetime.time(23, 59, 59, 999999) if row == 0 else datetime.time(0, 0)
    seconds = row if mark else rng.randint(0, 86399)
    return datetime.time(seconds // 3600 % 24, seconds // 60 % 60, seconds % 60)


def _duration(field: AnyField, row: int, mark: str, rng: random.Random, _c: Any, _r: Rule
              ) -> datetime.timedelta:
    if row in (0, 1):
        return datetime.timedelta(days=3650, microseconds=1) if row == 0 else datetime.timedelta(0)
    return datetime.timedelta(seconds=row if mark else rng.randint(1, 10**6))


def _uuid(field: AnyField, row: int, mark: str, rng: random.Random, _c: Any, _r: Rule
          ) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _ip(field: AnyField, row: int, mark: str, rng: random.Random, _c: Any, _r: Rule) -> str:
    protocol = getattr(field, "protocol", "both").lower()
    if protocol == "ipv6" or (protocol == "both" and row == 0):
        return f"2001:db8::{row:x}:{rng.randint(1, 0xFFFF):x}"
    return f"192.0.2.{row % 254 + 1}" if mark else f"198.51.100.{rng.randint(1, 254)}"


def _binary(field: AnyField, row: int, mark: str, rng: random.Random, _c: Any, _r: Rule
            ) -> bytes:
    limit = field.max_length or 64
    data = bytes([row % 256]) + bytes(rng.getrandbits(8) for _ in range(limit - 1))
    return data if row == 0 else data[: max(1, min(limit, 16))]


def _json(field: AnyField, row: int, mark: str, rng: random.Random, _c: Any, _r: Rule) -> Any:
    if row == 1 or not type(field).__module__.startswith("django."):
        # A third-party field that stores JSON (Wagtail's StreamField) has a structure of its
        # own: the empty list is what most of them take.
        return []
    if row == 0:
        return {"ünïcode": TEXT.strip(), "list": [1, 2.5, None, True], "nested": {"empty": {}}}
    return {"row": row, "value": rng.randint(1, 1000)}


def _hstore(field: AnyField, row: int, mark: str, rng: random.Random, _c: Any, _r: Rule
            ) -> dict[str, Any]:
    if row == 1:
        return {}
    return {"ünïcode": TEXT.strip(), "row": str(row), "empty": None}


def _array(field: AnyField, row: int, mark: str, rng: random.Random,
           connection: BaseDatabaseWrapper, _r: Rule) -> list[Any]:
    base = field.base_field  # type: ignore[attr-defined]
    if row == 1:
        return []
    items = [value(base, item, unique=bool(mark), seed=rng.randint(0, 2**31), model="array",
                   connection=connection) for item in (row, row + 3)]
    size = getattr(field, "size", None)
    return items[:size] if size else items


def _range(make_bounds: Callable[[int, random.Random], tuple[Any, Any]], kind_name: str
           ) -> Maker:
    def make(field: AnyField, row: int, mark: str, rng: random.Random, _c: Any, _r: Rule
             ) -> Any:
        from django.db.backends.postgresql import psycopg_any

        range_type = getattr(psycopg_any, kind_name)
        if row == 1:
            return range_type(empty=True)
        low, high = make_bounds(row, rng)
        return range_type(low, high)

    return make


def _datetimes(row: int, rng: random.Random) -> tuple[Any, Any]:
    start = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    return start, start + datetime.timedelta(days=row + 1 + rng.randint(0, 99))


def _network(field: AnyField, row: int, mark: str, rng: random.Random, _c: Any, _r: Rule
             ) -> str:
    return f"10.{row % 256}.{rng.randint(0, 255) if not mark else row // 256 % 256}.0/24"


def _mac(field: AnyField, row: int, mark: str, rng: random.Random, _c: Any, _r: Rule) -> str:
    low = row if mark else rng.randint(0, 0xFFFF)
    return f"02:00:00:00:{low >> 8 & 0xFF:02x}:{low & 0xFF:02x}"


_BY_DB_TYPE: dict[str, Maker] = {
    # A custom field that says it is a CharField (for forms) over a column of a PostgreSQL
    # type of its own (NetBox's IP and MAC fields): the column decides what a value may be.
    "inet": _ip,
    "cidr": _network,
    "macaddr": _mac,
    "macaddr8": _mac,
    "uuid": _uuid,
}

_FORMATS: dict[str, Maker] = {
    # Django's types for these are CharField's; a real value is an address, in lower case as
    # sites normalise them (Ünïcode text would fail the field's own validator).
    "EmailField": _ascii("user.", "@example.com"), "URLField": _ascii("https://example.com/"),
}

_MAKERS: dict[str, Maker] = {
    "CharField": _text, "TextField": _text,
    "SlugField": _ascii("slug-"), "EmailField": _ascii("user.", "@example.com"),
    "URLField": _ascii("https://example.com/"), "FileField": _ascii("uploads/", ".txt"),
    "FilePathField": _ascii("/tmp/", ".txt"),
    "SearchVectorField": _ascii("word"),
    "IntegerField": _integer, "BigIntegerField": _integer, "SmallIntegerField": _integer,
    "PositiveIntegerField": _integer, "PositiveSmallIntegerField": _integer,
    "PositiveBigIntegerField": _integer,
    "DecimalField": _decimal, "FloatField": _float,
    "BooleanField": _boolean, "NullBooleanField": _boolean,
    "DateField": _date, "DateTimeField": _datetime, "TimeField": _time,
    "DurationField": _duration, "UUIDField": _uuid,
    "GenericIPAddressField": _ip, "IPAddressField": _ip, "BinaryField": _binary,
    "JSONField": _json, "HStoreField": _hstore, "ArrayField": _array,
    "IntegerRangeField": _range(lambda r, g: (r, r + 1 + g.randint(1, 99)), "NumericRange"),
    "BigIntegerRangeField": _range(lambda r, g: (r, r + 1 + g.randint(1, 99)), "NumericRange"),
    "DecimalRangeField": _range(lambda r, g: (Decimal(r) / 2, Decimal(r + 9) / 2),
                                "NumericRange"),
    "DateRangeField": _range(lambda r, g: (_EPOCH + datetime.timedelta(days=r),
                                           _LATEST - datetime.timedelta(days=g.randint(0, 99))),
                             "DateRange"),
    "DateTimeRangeField": _range(_datetimes, "DateTimeTZRange"),
}
