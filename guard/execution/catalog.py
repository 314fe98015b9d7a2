"""The one catalog query a schema snapshot reads (:mod:`guard.execution.schema` builds the
snapshot from what it returns): every kind of object in one JSON object, in one round trip."""

from __future__ import annotations

# One statement, one round trip. No "%" anywhere: drivers that interpolate parameters must not
# see a placeholder.
SQL = """
WITH ns AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname !~ '^pg_(toast|temp_)'
),
rel AS (
    SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind
    FROM pg_class c JOIN ns n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
      AND NOT (c.relkind IN ('r', 'p') AND c.relname = 'django_migrations')
      AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass
                      AND e.objid = c.oid AND e.deptype = 'e')
      AND NOT (c.relkind = 'S' AND EXISTS (
          SELECT 1 FROM pg_depend d JOIN pg_class o ON o.oid = d.refobjid
          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
            AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
            AND o.relname = 'django_migrations'))
)
SELECT json_build_object(
'schemas', (SELECT coalesce(json_agg(nspname), '[]') FROM ns),
'tables', (SELECT coalesce(json_agg(json_build_object(
    'schema', r.schema, 'name', r.name, 'kind', r.relkind::text,
    'unlogged', c.relpersistence = 'u',
    'inherits', (SELECT json_agg(json_build_array(pn.nspname, pc.relname) ORDER BY i.inhseqno)
                 FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent
                 JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid),
    'partition_bound', CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,
    'partition_key', CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
    'comment', obj_description(c.oid, 'pg_class'))), '[]')
    FROM rel r JOIN pg_class c ON c.oid = r.oid WHERE r.relkind IN ('r', 'p')),
'columns', (SELECT coalesce(json_agg(json_build_object(
    'schema', r.schema, 'table', r.name, 'name', a.attname,
    'type', format_type(a.atttypid, a.atttypmod), 'not_null', a.attnotnull,
    'default', pg_get_expr(d.adbin, d.adrelid),
    'identity', a.attidentity::text, 'generated', a.attgenerated::text,
    'collation', CASE WHEN a.attcollation <> t.typcollation
        THEN (SELECT collname FROM pg_collation WHERE oid = a.attcollation) END,
    'comment', ds.description, 'position', a.attnum)), '[]')
    FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    LEFT JOIN pg_description ds ON ds.objoid = a.attrelid AND ds.objsubid = a.attnum
        AND ds.classoid = 'pg_class'::regclass
    WHERE r.relkind IN ('r', 'p')),
'constraints', (SELECT coalesce(json_agg(json_build_object(
    'schema', r.schema, 'table', r.name, 'name', co.conname,
    'definition', pg_get_constraintdef(co.oid))), '[]')
    FROM pg_constraint co JOIN rel r ON r.oid = co.conrelid WHERE co.contype <> 'n'),
'indexes', (SELECT coalesce(json_agg(json_build_object(
    'schema', r.schema, 'table', r.name, 'name', ic.relname, 'valid', i.indisvalid,
    'definition', pg_get_indexdef(i.indexrelid))), '[]')
    FROM pg_index i JOIN rel r ON r.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
    WHERE NOT EXISTS (SELECT 1 FROM pg_constraint co WHERE co.conrelid = i.indrelid
                      AND co.conindid = i.indexrelid AND co.contype IN ('p', 'u', 'x'))),
'sequences', (SELECT coalesce(json_agg(json_build_object(
    'schema', r.schema, 'name', r.name, 'type', format_type(s.seqtypid, NULL),
    'start', s.seqstart, 'increment', s.seqincrement, 'min', s.seqmin, 'max', s.seqmax,
    'cache', s.seqcache, 'cycle', s.seqcycle,
    'owned_by', (SELECT json_build_array(on_.nspname, oc.relname, oa.attname)
                 FROM pg_depend d JOIN pg_class oc ON oc.oid = d.refobjid
                 JOIN pg_namespace on_ ON on_.oid = oc.relnamespace
                 JOIN pg_attribute oa ON oa.attrelid = d.refobjid AND oa.attnum = d.refobjsubid
                 WHERE d.classid = 'pg_class'::regclass AND d.objid = r.oid
                   AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                 LIMIT 1))), '[]')
    FROM rel r JOIN pg_sequence s ON s.seqrelid = r.oid),
'views', (SELECT coalesce(json_agg(json_build_object(
    'schema', r.schema, 'name', r.name, 'kind', r.relkind::text,
    'definition', pg_get_viewdef(r.oid))), '[]')
    FROM rel r WHERE r.relkind IN ('v', 'm')),
'triggers', (SELECT coalesce(json_agg(json_build_object(
    'schema', r.schema, 'table', r.name, 'name', tg.tgname, 'enabled', tg.tgenabled::text,
    'definition', pg_get_triggerdef(tg.oid))), '[]')
    FROM pg_trigger tg JOIN rel r ON r.oid = tg.tgrelid WHERE NOT tg.tgisinternal),
'functions', (SELECT coalesce(json_agg(json_build_object(
    'schema', n.nspname, 'name', p.proname, 'kind', p.prokind::text,
    'arguments', pg_get_function_identity_arguments(p.oid),
    'definition', pg_get_functiondef(p.oid))), '[]')
    FROM pg_proc p JOIN ns n ON n.oid = p.pronamespace
    WHERE p.prokind <> 'a'
      AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass
                      AND e.objid = p.oid AND e.deptype IN ('e', 'i'))),
'types', (SELECT coalesce(json_agg(json_build_object(
    'schema', n.nspname, 'name', t.typname, 'kind', t.typtype::text,
    'labels', (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder)
               FROM pg_enum e WHERE e.enumtypid = t.oid),
    'base_type', CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
    'not_null', t.typnotnull, 'default', t.typdefault,
    'constraints', (SELECT json_agg(def ORDER BY def)
                    FROM (SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c
                          WHERE c.contypid = t.oid AND c.contype <> 'n') dc),
    'attributes', (SELECT json_agg(json_build_array(a.attname,
                                                    format_type(a.atttypid, a.atttypmod))
                                   ORDER BY a.attnum)
                   FROM pg_attribute a WHERE t.typtype = 'c' AND a.attrelid = t.typrelid
                     AND a.attnum > 0 AND NOT a.attisdropped),
    'subtype', (SELECT format_type(rg.rngsubtype, NULL) FROM pg_range rg
                WHERE rg.rngtypid = t.oid))), '[]')
    FROM pg_type t JOIN ns n ON n.oid = t.typnamespace
    WHERE (t.typtype IN ('e', 'd', 'r')
           OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
      AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_type'::regclass
                      AND e.objid = t.oid AND e.deptype = 'e')),
'extensions', (SELECT coalesce(json_agg(json_build_object(
    'name', x.extname, 'version', x.extversion, 'schema', xn.nspname)), '[]')
    FROM pg_extension x JOIN pg_namespace xn ON xn.oid = x.extnamespace)
)
"""


def with_more(name: str, expression: str) -> str:
    """:data:`SQL` with one more key in its JSON object: ``name``, the value of the SQL
    ``expression`` (another reading of the database in the same round trip)."""
    body = SQL.rstrip()
    assert body.endswith(")")
    return f"{body[:-1]},\n'{name}', {expression}\n)\n"
