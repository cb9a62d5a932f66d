"""Every raw SQL statement in app/ (and workers/) that reads or changes a tenant-owned table
carries the tenant predicate from the one helper, `app.db.tenant_is`, or says it spans tenants
(`all_tenants`).

A tenant-owned table is one with a `tenant_id` column (in the models or the migrated test
database, so a new one is covered without touching this test). The scan reads app/ and
workers/ with `ast`: each string literal (an f-string with its `{...}` parts) that names such a
table after FROM, JOIN or UPDATE must, in that same literal, format `tenant_is("<its alias>", ...)`. Two compositions count as that call:
`{where.sql}` scopes `p` (a `SqlWhere.of_tenant` starts with `tenant_is("p", "$1")`), and a
literal passed to `all_tenants(...)` needs no predicate. An INSERT's target gets its tenant as a
value, which the ORM and `tenant_of` provide, so INSERT INTO is not a reference. Import chunks
and rejected rows have no tenant column: they belong to a tenant through their job, and are only
reached by the id of a job read within its tenant (or by its own task).
(Why not Postgres row-level security: bench/rls.py.)
"""

import ast
import re
from pathlib import Path

import asyncpg
import pytest

import app.models  # noqa: F401  (registers the tables)
from app.db import Base, all_tenants, tenant_is

ROOT = Path(__file__).resolve().parent.parent
SCANNED = (ROOT / "app", ROOT / "workers")
TENANT_TABLES = sorted(t.name for t in Base.metadata.tables.values() if "tenant_id" in t.c)
_NOT_ALIAS = (
    "WHERE|ON|JOIN|LEFT|RIGHT|INNER|CROSS|FULL|SET|ORDER|GROUP|LIMIT|OFFSET|USING|FOR|WHEN|AND|OR"
    "|UNION|RETURNING|HAVING|WINDOW|WITH|AS|NATURAL|LATERAL|TABLESAMPLE"
)


def reference_pattern(tables: list[str]) -> re.Pattern[str]:
    return re.compile(
        rf"\b(?:FROM|JOIN|UPDATE)\s+(?:ONLY\s+)?({'|'.join(tables)})\b"
        rf"(?:\s+(?:AS\s+)?(?!(?:{_NOT_ALIAS})\b)([a-z_][a-z0-9_]*))?",
        re.IGNORECASE,  # SQL in lower case is SQL too
    )


REFERENCE = reference_pattern(TENANT_TABLES)
SCOPED_WHERE = {"where.sql": "p"}  # formatted expression -> the alias it scopes


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                ids.add(id(body[0].value))
    return ids


def _called(node: ast.AST, name: str) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == name) or (
        isinstance(func, ast.Attribute) and func.attr == name
    )


def _literal(node: ast.AST) -> tuple[str, set[str]] | None:
    """The SQL text of a string literal (formatted parts as placeholders) and the aliases its
    `tenant_is(...)` parts scope."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, set()
    if not isinstance(node, ast.JoinedStr):
        return None
    text, scoped = [], set()
    for part in node.values:
        if isinstance(part, ast.Constant):
            text.append(str(part.value))
            continue
        assert isinstance(part, ast.FormattedValue)
        text.append(" ? ")
        value = part.value
        if _called(value, "tenant_is"):
            assert isinstance(value, ast.Call)
            alias = value.args[0] if value.args else None
            if isinstance(alias, ast.Constant) and isinstance(alias.value, str):
                scoped.add(alias.value)
        elif ast.unparse(value) in SCOPED_WHERE:
            scoped.add(SCOPED_WHERE[ast.unparse(value)])
    return "".join(text), scoped


def unscoped_references(
    source: str, reference: re.Pattern[str] = REFERENCE
) -> list[tuple[int, str, str]]:
    """(line, table or alias, SQL) of each reference to a tenant table without its predicate."""
    tree = ast.parse(source)
    skipped = _docstrings(tree)
    for node in ast.walk(tree):
        if _called(node, "all_tenants"):
            assert isinstance(node, ast.Call)
            skipped.update(id(n) for arg in node.args for n in ast.walk(arg))
        if isinstance(node, ast.JoinedStr):  # its parts are read with it, not on their own
            skipped.update(id(n) for n in node.values)
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        literal = _literal(node)
        if literal is None:
            continue
        assert isinstance(node, ast.expr)
        sql, scoped = literal
        for match in reference.finditer(sql):
            name = match.group(2) or match.group(1)
            if name not in scoped:
                found.append((node.lineno, name, " ".join(sql.split())[:160]))
    return found


async def tenant_tables_in_database() -> list[str]:
    """Tables with a tenant_id column in the migrated test database: also those only migrations
    create (the change log's)."""
    from app.config import get_settings
    from app.db import pg_dsn

    conn = await asyncpg.connect(pg_dsn(get_settings().database_url))
    try:
        rows = await conn.fetch(
            """SELECT c.table_name FROM information_schema.columns c
               JOIN information_schema.tables t USING (table_schema, table_name)
               WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id'
                 AND t.table_type = 'BASE TABLE'"""
        )
    finally:
        await conn.close()
    return sorted(r[0] for r in rows)


async def test_every_raw_statement_on_a_tenant_table_carries_the_tenant_predicate():
    tables = sorted(set(TENANT_TABLES) | set(await tenant_tables_in_database()))
    assert {"products", "categories", "facet_counts", "api_keys", "import_jobs"} <= set(tables)
    reference = reference_pattern(tables)
    problems = [
        f"{path.relative_to(ROOT)}:{line}: `{name}` without tenant_is({name!r}): {sql}"
        for folder in SCANNED
        for path in sorted(folder.rglob("*.py"))
        for line, name, sql in unscoped_references(path.read_text(), reference)
    ]
    assert not problems, "\n".join(problems)


def test_the_scan_finds_what_it_should():
    """The guard is only as good as its reading of SQL: statements it must flag and accept."""
    flagged = [
        '"SELECT * FROM products WHERE id = $1"',
        '"SELECT p.id FROM products p WHERE p.id = $1"',
        'f"SELECT 1 FROM categories c WHERE c.id = {x}"',
        "f\"SELECT 1 FROM products p JOIN categories c ON {tenant_is('p')} AND c.id = 1\"",
        '"UPDATE import_jobs SET status = $2 WHERE id = $1"',
        '"DELETE FROM api_keys AS k WHERE k.id = :id"',
        '"SELECT x FROM t LEFT JOIN views v ON v.id = t.v"',
        '"select * from segments s where s.id = $1"',
        'f"SELECT 1 FROM products q WHERE {other.sql}"',
    ]
    accepted = [
        "f\"SELECT * FROM products WHERE {tenant_is('products')} AND id = $2\"",
        "f\"SELECT 1 FROM products p JOIN categories c ON {tenant_is('c', '$3')} WHERE"
        " {tenant_is('p')}\"",
        'f"SELECT count(*) FROM products p WHERE {where.sql}"',
        'all_tenants("SELECT tenant_id FROM import_jobs WHERE id = $1")',
        '"INSERT INTO products (tenant_id, sku) VALUES ($1, $2)"',
        '"SELECT substring(data FROM $3) FROM import_chunks WHERE job_id = $1"',
        '"the products from the feed"',
    ]
    for source in flagged:
        assert unscoped_references(f"sql = {source}"), source
    for source in accepted:
        assert not unscoped_references(f"sql = {source}"), source
    assert not unscoped_references('"""A docstring: SELECT * FROM products."""'), "docstring"
    assert tenant_is("p", "$3").split() == ["p.tenant_id", "=", "$3"]
    for alias, param in (("p; DROP", "$1"), ("p", "1 OR TRUE"), ("P", "$1"), ("p", "$0")):
        with pytest.raises(ValueError):
            tenant_is(alias, param)
    assert all_tenants("SELECT 1") == "SELECT 1"
