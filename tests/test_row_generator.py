"""The generated rows, looked at from inside a migration of the project.

The ``kinds`` app's first migration makes models with every kind of field and relation the
generator handles; its second is a ``RunPython`` that reads the rows it finds in the base and
raises if one of the README's promises does not hold, so that the check fails and says which.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.guardrun import Run, run_guard, write

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]

FIELDS = '''
from django.contrib.postgres.fields import ArrayField
from django.db import models


class PathishField(ArrayField):
    """NetBox's PathField: an ArrayField subclass, so its type is its own class name."""

    def __init__(self, **kwargs):
        kwargs["base_field"] = models.CharField(max_length=40)
        super().__init__(**kwargs)


class StreamishField(models.JSONField):
    """A third-party field that stores JSON of a structure of its own (Wagtail's StreamField)."""

    def get_prep_value(self, value):
        if not isinstance(value, list):
            raise TypeError(f"Cannot handle {value!r} as a stream")
        return super().get_prep_value(value)


class InetField(models.Field):
    """NetBox's way: a CharField for forms over a PostgreSQL inet column, which checks."""

    def db_type(self, connection):
        return "inet"

    def get_internal_type(self):
        return "CharField"

    def get_prep_value(self, value):
        import ipaddress

        return None if value is None else str(ipaddress.ip_interface(value))


class WeirdField(models.Field):
    """A custom field of a type migration-guard does not know."""

    def db_type(self, connection):
        return "text"

    def get_internal_type(self):
        return "WeirdField"
'''

INITIAL = '''
import uuid

import django
import django.contrib.postgres.fields as pg
from django.core.validators import MaxValueValidator, MinValueValidator
from django.conf import settings
from django.db import migrations, models

from kinds.fields import InetField, PathishField, StreamishField, WeirdField

CHECK = "condition" if django.VERSION >= (5, 1) else "check"


def fk(to, **kwargs):
    return models.ForeignKey(to, on_delete=models.CASCADE, **kwargs)


class Migration(migrations.Migration):
    initial = True
    dependencies = [migrations.swappable_dependency(settings.AUTH_USER_MODEL)]

    operations = [
        migrations.CreateModel("Tag", [("id", models.AutoField(primary_key=True)),
                                       ("name", models.CharField(max_length=10, unique=True))]),
        migrations.CreateModel("Kind", [
            ("id", models.BigAutoField(primary_key=True)),
            ("char", models.CharField(max_length=12)),
            ("text", models.TextField()),
            ("slug", models.SlugField(max_length=20)),
            ("email", models.EmailField()),
            ("url", models.URLField()),
            ("integer", models.IntegerField()),
            ("small", models.SmallIntegerField()),
            ("big", models.BigIntegerField()),
            ("positive", models.PositiveIntegerField()),
            ("price", models.DecimalField(max_digits=5, decimal_places=2)),
            ("ratio", models.FloatField()),
            ("flag", models.BooleanField()),
            ("maybe", models.BooleanField(null=True)),
            ("day", models.DateField()),
            ("moment", models.DateTimeField()),
            ("clock", models.TimeField()),
            ("span", models.DurationField()),
            ("uuid", models.UUIDField(unique=True)),
            ("ip", models.GenericIPAddressField()),
            ("blob", models.BinaryField()),
            ("data", models.JSONField()),
            ("status", models.CharField(max_length=1, choices=[("a", "A"), ("b", "B")])),
            ("code", models.CharField(max_length=8, unique=True)),
            ("nullable", models.CharField(max_length=5, null=True)),
            ("optional", models.CharField(max_length=5, blank=True)),
            ("numbers", pg.ArrayField(models.IntegerField(), size=3)),
            ("span_range", pg.IntegerRangeField()),
            ("when", pg.DateTimeRangeField(null=True)),
            ("token", models.UUIDField(default=uuid.uuid4)),
            ("score", models.SmallIntegerField(validators=[MinValueValidator(0),
                                                          MaxValueValidator(10)])),
            ("level", models.IntegerField()),
            ("stream", StreamishField()),
            ("address", InetField()),
            ("path", PathishField()),
            ("tags", models.ManyToManyField("kinds.Tag")),
        ], options={"constraints": [models.CheckConstraint(
            **{CHECK: models.Q(level__in=[1, 2, 3])}, name="known_level")]}),
        migrations.CreateModel("Parent", [("id", models.AutoField(primary_key=True)),
                                          ("name", models.CharField(max_length=3))]),
        migrations.CreateModel("Special", [
            ("parent_ptr", models.OneToOneField(on_delete=models.CASCADE, parent_link=True,
                                                auto_created=True, primary_key=True,
                                                serialize=False, to="kinds.parent")),
            ("extra", models.CharField(max_length=4)),
        ], bases=("kinds.parent",)),
        migrations.CreateModel("Child", [("id", models.AutoField(primary_key=True)),
                                         ("parent", fk("kinds.Parent"))]),
        migrations.CreateModel("Node", [("id", models.AutoField(primary_key=True)),
                                        ("parent", fk("kinds.Node", null=True))]),
        migrations.CreateModel("Left", [("id", models.AutoField(primary_key=True))]),
        migrations.CreateModel("Right", [("id", models.AutoField(primary_key=True)),
                                         ("left", fk("kinds.Left"))]),
        migrations.AddField("Left", "right", fk("kinds.Right", null=True)),
        migrations.CreateModel("Profile", [
            ("id", models.AutoField(primary_key=True)),
            ("user", models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)),
        ]),
        migrations.CreateModel("Member", [
            ("id", models.AutoField(primary_key=True)),
            ("user", models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)),
        ]),
        migrations.CreateModel("Premium", [
            ("member_ptr", models.OneToOneField(on_delete=models.CASCADE, parent_link=True,
                                                auto_created=True, primary_key=True,
                                                serialize=False, to="kinds.member")),
        ], bases=("kinds.member",)),
        migrations.CreateModel("Pair", [
            ("id", models.AutoField(primary_key=True)),
            ("a", models.IntegerField()), ("b", models.IntegerField()),
        ], options={"unique_together": {("a", "b")}}),
        migrations.CreateModel("Slot", [
            ("id", models.AutoField(primary_key=True)),
            ("room", fk("kinds.Parent")), ("hour", models.SmallIntegerField()),
        ], options={"constraints": [models.UniqueConstraint(fields=["room", "hour"],
                                                            name="one_per_hour")]}),
        migrations.CreateModel("Checked", [
            ("id", models.AutoField(primary_key=True)), ("n", models.IntegerField()),
        ], options={"constraints": [models.CheckConstraint(
            **{CHECK: models.Q(n=models.F("id") * -1)}, name="minus_id")]}),
        migrations.CreateModel("Weird", [("id", models.AutoField(primary_key=True)),
                                         ("value", WeirdField())]),
        migrations.CreateModel("Outside", [("id", models.AutoField(primary_key=True))],
                               options={"managed": False, "db_table": "kinds_outside"}),
        migrations.CreateModel("ParentProxy", [], options={"proxy": True},
                               bases=("kinds.parent",)),
        migrations.CreateModel("Ref", [("id", models.AutoField(primary_key=True)),
                                       ("parent", fk("kinds.ParentProxy"))]),
        migrations.CreateModel("Photo", [
            ("id", models.AutoField(primary_key=True)),
            ("image", models.ImageField(upload_to="photos", width_field="width",
                                        height_field="height")),
            ("width", models.IntegerField(null=True)), ("height", models.IntegerField(null=True)),
        ]),
    ]
'''

LOOK = '''
import hashlib

from django.db import migrations

PROBLEMS = []


def expect(ok, what):
    if not ok:
        PROBLEMS.append(what)


def look(apps, schema_editor):
    get = lambda name: apps.get_model("kinds", name)
    Kind = get("Kind")
    kinds = list(Kind.objects.order_by("pk"))
    expect(len(kinds) == 3, f"3 Kind rows, not {len(kinds)}")
    expect(any(len(k.char) == 12 for k in kinds), "the longest string max_length allows")
    expect(any(not k.text.isascii() for k in kinds), "non-ASCII text")
    expect(any(k.nullable is None for k in kinds), "NULL where NULL is allowed")
    expect(any(k.optional == "" for k in kinds), "an empty string where blank is")
    expect(len({k.char for k in kinds}) < 3, "repeated values where not unique")
    expect(len({k.code for k in kinds}) == 3, "distinct values where unique")
    expect(len({k.uuid for k in kinds}) == 3, "distinct UUIDs")
    expect(any(k.integer == 2147483647 for k in kinds), "the largest integer")
    expect(any(k.small == -32768 for k in kinds), "the smallest smallint")
    expect(all(k.positive >= 0 for k in kinds), "positive integers")
    expect(any(str(k.price) == "999.99" for k in kinds), "the largest decimal(5, 2)")
    expect(all(k.status in ("a", "b") for k in kinds), "values from choices")
    expect(all(len(k.numbers) <= 3 for k in kinds), "arrays within their size")
    expect(any(k.maybe is None for k in kinds), "a NULL boolean")
    expect(Kind.tags.through.objects.count() >= 3, "many-to-many rows")
    expect(len({k.token for k in kinds}) == 3, "a value of its own where the default is uuid4")
    expect(all(0 <= k.score <= 10 for k in kinds) and any(k.score == 10 for k in kinds),
           "numbers within the validators' range, up to its edge")
    expect(all(k.level in (1, 2, 3) for k in kinds), "values a check constraint allows")
    # A healthy migration must not fail on values no user could enter: an EmailField (Django's
    # type for it is CharField's) holds addresses its validator takes, in lower case as sites
    # keep them (healthchecks' accounts.0049 lower-cases every address, and refuses to when two
    # accounts' addresses differ only in case), a URLField URLs.
    from django.core.validators import EmailValidator, URLValidator

    for k in kinds:
        try:
            EmailValidator()(k.email)
            URLValidator()(k.url)
        except Exception as exc:
            expect(False, f"valid addresses and URLs, not {k.email!r}, {k.url!r}: {exc}")
    expect(all(k.email == k.email.lower() for k in kinds), "addresses in lower case")
    expect(all(k.stream == [] for k in kinds), "an empty list for a third-party JSON field")
    expect(any(k.path for k in kinds), "arrays in a subclass of ArrayField")
    expect(all(":" in k.address or "." in k.address for k in kinds),
           "addresses where the column is inet, whatever the field says it is")
    expect(get("Special").objects.count() == 3 and get("Parent").objects.count() == 6,
           "multi-table inheritance: the child's rows and their parents' rows")
    expect(get("Child").objects.count() == 3, "rows pointing at their parents")
    nodes = get("Node").objects.filter(parent__isnull=False).count()
    expect(nodes >= 1, "a self-reference filled afterwards")
    expect(get("Right").objects.count() == 3, "the NOT NULL side of a cycle")
    expect(get("Left").objects.filter(right__isnull=False).count() >= 1,
           "the nullable side of a cycle filled afterwards")
    User = apps.get_model(*"{user}".split("."))
    expect(get("Profile").objects.count() == min(3, User.objects.count()), "one-to-ones")
    pairs = list(get("Pair").objects.values_list("a", "b"))
    expect(len(pairs) == 3 and len(set(pairs)) == 3, "unique_together holds")
    expect(get("Slot").objects.count() >= 1, "a UniqueConstraint over a foreign key")
    expect(get("Ref").objects.count() == 3, "rows pointing at a proxy's concrete rows")
    expect(get("Photo").objects.count() == 3, "images with dimension fields (no file read)")
    expect(get("Checked").objects.count() == 0, "a model no row fits is skipped")
    expect(get("Weird").objects.count() == 0, "a custom field of unknown type is skipped")
    if PROBLEMS:
        raise AssertionError("generated rows lack: " + "; ".join(PROBLEMS))
    digest = hashlib.sha256(repr([
        (k.char, k.text, k.integer, k.price, k.uuid, k.data, k.status) for k in kinds
    ]).encode()).hexdigest()[:12]
    raise RuntimeError(f"rows digest {digest}")


class Migration(migrations.Migration):
    dependencies = [("kinds", "0001_initial")]
    operations = [migrations.RunPython(look, migrations.RunPython.noop)]
'''

PERSON = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [migrations.CreateModel("Person", [
        ("id", models.BigAutoField(primary_key=True)),
        ("password", models.CharField(max_length=128)),
        ("last_login", models.DateTimeField(blank=True, null=True)),
        ("email", models.EmailField(max_length=254, unique=True)),
    ], options={"abstract": False})]
'''

PERSON_MODEL = '''
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models


class Person(AbstractBaseUser):
    email = models.EmailField(unique=True)
    USERNAME_FIELD = "email"
'''

SWAPPED = '''
    from django.db import connection

    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
    if "auth_user" in tables:
        raise AssertionError("auth.User is swapped out: its table should not exist")
'''


def kinds_project(shop: Path, *, user: str = "auth.User") -> Path:
    """The kinds app; ``user``: the AUTH_USER_MODEL (``people.Person`` swaps auth.User out)."""
    app = shop / "kinds"
    write(app / "__init__.py", "")
    write(app / "fields.py", FIELDS)
    write(app / "migrations" / "__init__.py", "")
    write(app / "migrations" / "0001_initial.py", INITIAL)
    text = LOOK.replace("{user}", user)
    extra = '\nINSTALLED_APPS += ["django.contrib.postgres", "kinds"]\n'
    if user != "auth.User":
        text = text.replace("    if PROBLEMS:\n", SWAPPED + "    if PROBLEMS:\n")
        write(shop / "people" / "__init__.py", "")
        write(shop / "people" / "models.py", PERSON_MODEL)
        write(shop / "people" / "migrations" / "__init__.py", "")
        write(shop / "people" / "migrations" / "0001_initial.py", PERSON)
        extra += f'INSTALLED_APPS += ["people"]\nAUTH_USER_MODEL = "{user}"\n'
    look = write(app / "migrations" / "0002_look.py", text)
    settings = shop / "shop" / "settings.py"
    settings.write_text(settings.read_text() + extra)
    return look


def look(shop: Path, pg_url: str, *extra: str) -> Run:
    return run_guard("check", shop / "kinds" / "migrations" / "0002_look.py", "--project-dir",
                     shop, "--db", pg_url, "--format", "json", "--no-github", *extra)


def forward_error(run: Run) -> str:
    [result] = [r for r in run.report["results"] if r["migration"] == "kinds.0002_look"]
    return str(result["steps"][0].get("error", ""))


def test_generated_rows_fit_every_field_and_relation(shop: Path, pg_url: str) -> None:
    kinds_project(shop)
    write(shop / "pyproject.toml", "[tool.migration-guard]\ncache_size = 0\n")
    run = look(shop, pg_url, "--data-seed", "1")
    error = forward_error(run)
    # The RunPython found every promise kept, and ends by raising the rows' digest.
    assert "RuntimeError: rows digest " in error, error
    notes = run.report["base"]["rows"]["notes"]
    assert any(n.startswith("no rows for kinds.Checked: the database took none") for n in notes)
    assert any(n.startswith("no rows for kinds.Weird: field value is a WeirdField") for n in notes)
    # Under multi-table inheritance the parent's rows took every user its one-to-one allows.
    assert ("no rows for kinds.Premium: every row of auth.user already has one (its user is "
            "unique)") in notes
    assert not any("Outside" in n or "ParentProxy" in n for n in notes), notes

    # The same seed gives the same rows (no cache: they are made again); another seed, others.
    assert forward_error(look(shop, pg_url, "--data-seed", "1")) == error
    assert forward_error(look(shop, pg_url, "--data-seed", "2")) != error


def test_a_swapped_user_model_gets_rows_and_auth_user_none(shop: Path, pg_url: str) -> None:
    kinds_project(shop, user="people.Person")
    run = look(shop, pg_url)
    error = forward_error(run)
    # Profile and Member point at people.Person; auth.User is swapped out and has no table.
    assert "RuntimeError: rows digest " in error, error
    assert not any("auth.User" in note for note in run.report["base"]["rows"]["notes"])
