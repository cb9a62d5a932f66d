"""Change log: one entry per product per write, appended by triggers in the writing transaction

Every INSERT, UPDATE and DELETE on products (POST, PATCH, DELETE, bulk, import, category delete,
revert: whatever the path) appends to product_changes from statement-level AFTER triggers over
the transition tables, so a bulk statement logs its rows in one INSERT ... SELECT. The field-level
diff is computed in SQL (keys whose values differ between the old and new state); a row whose
state did not change logs nothing.

Sequence numbers are per tenant, taken from the tenant's row in product_change_seqs, which the
trigger updates: that row stays locked until the writing transaction ends, so a tenant's writers
get their numbers in commit order and a reader never sees seq N+1 before seq N (no outbox gap).
The triggers are named after the facet triggers (products_facets_*) so they fire after them.

Who wrote, the request id and the import job come from the transaction-local setting
`pim.change` (JSON, set by app/changes/context.py).

Revision ID: h2_changes_1
Revises: h2_jobs_1
"""

from alembic import op

revision = "h2_changes_1"
down_revision = "h2_jobs_1"
branch_labels = None
depends_on = None

FUNCTIONS = [
    r"""
-- A product's state as the change log sees it: data keys and built-ins under their own names
-- (schema fields cannot take a built-in's name); a null built-in is absent.
CREATE OR REPLACE FUNCTION pim_product_state(name text, status text, categories bigint[],
    variation_of text, variation_attributes text[], data jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  -- (jsonb_strip_nulls would cost twice the rest: only variation_of can be null)
  SELECT data || jsonb_build_object(
      'name', name, 'status', status, 'categories', to_jsonb(categories),
      'variation_attributes', to_jsonb(variation_attributes))
    || CASE WHEN variation_of IS NULL THEN '{}'::jsonb
            ELSE jsonb_build_object('variation_of', variation_of) END
$$
""",
    r"""
CREATE OR REPLACE FUNCTION pim_log_product_changes() RETURNS trigger
-- the planner's guesses for transition tables make JIT look worth seconds of compiling (0006)
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
  ctx jsonb := NULLIF(current_setting('pim.change', true), '')::jsonb;
  source text;
BEGIN
  -- (tenant_id, product_id, sku, op, old_values, new_values): a create keeps the new state, a
  -- delete the old one, an update the old and new values of the keys that differ
  IF TG_OP = 'INSERT' THEN
    source := $s$SELECT n.tenant_id, n.id, n.sku, 'created', NULL::jsonb,
        pim_product_state(n.name, n.status, n.categories, n.variation_of, n.variation_attributes, n.data)
      FROM new_rows n$s$;
  ELSIF TG_OP = 'UPDATE' THEN
    -- built-ins compared as columns, data key by key: no state is built for an update
    -- (five times cheaper than diffing two states)
    source := $s$SELECT n.tenant_id, n.id, n.sku, 'updated',
        (CASE WHEN o.name IS DISTINCT FROM n.name THEN jsonb_build_object('name', o.name) ELSE '{}' END
         || CASE WHEN o.status IS DISTINCT FROM n.status THEN jsonb_build_object('status', o.status) ELSE '{}' END
         || CASE WHEN o.categories IS DISTINCT FROM n.categories
                 THEN jsonb_build_object('categories', o.categories) ELSE '{}' END
         || CASE WHEN o.variation_of IS DISTINCT FROM n.variation_of AND o.variation_of IS NOT NULL
                 THEN jsonb_build_object('variation_of', o.variation_of) ELSE '{}' END
         || CASE WHEN o.variation_attributes IS DISTINCT FROM n.variation_attributes
                 THEN jsonb_build_object('variation_attributes', o.variation_attributes) ELSE '{}' END
         || COALESCE((SELECT jsonb_object_agg(key, value) FROM jsonb_each(o.data)
                      WHERE n.data -> key IS DISTINCT FROM value), '{}')),
        (CASE WHEN o.name IS DISTINCT FROM n.name THEN jsonb_build_object('name', n.name) ELSE '{}' END
         || CASE WHEN o.status IS DISTINCT FROM n.status THEN jsonb_build_object('status', n.status) ELSE '{}' END
         || CASE WHEN o.categories IS DISTINCT FROM n.categories
                 THEN jsonb_build_object('categories', n.categories) ELSE '{}' END
         || CASE WHEN o.variation_of IS DISTINCT FROM n.variation_of AND n.variation_of IS NOT NULL
                 THEN jsonb_build_object('variation_of', n.variation_of) ELSE '{}' END
         || CASE WHEN o.variation_attributes IS DISTINCT FROM n.variation_attributes
                 THEN jsonb_build_object('variation_attributes', n.variation_attributes) ELSE '{}' END
         || COALESCE((SELECT jsonb_object_agg(key, value) FROM jsonb_each(n.data)
                      WHERE o.data -> key IS DISTINCT FROM value), '{}'))
      FROM old_rows o JOIN new_rows n ON n.id = o.id
      WHERE (o.name, o.status, o.categories, o.variation_of, o.variation_attributes, o.data)
            IS DISTINCT FROM (n.name, n.status, n.categories, n.variation_of, n.variation_attributes, n.data)$s$;
  ELSE
    source := $s$SELECT o.tenant_id, o.id, o.sku, 'deleted',
        pim_product_state(o.name, o.status, o.categories, o.variation_of, o.variation_attributes, o.data),
        NULL::jsonb
      FROM old_rows o$s$;
  END IF;
  EXECUTE format($q$
    WITH d AS MATERIALIZED (
        SELECT * FROM (%s) s(tenant_id, product_id, sku, op, old_values, new_values)
    ), counts AS (
        SELECT tenant_id, count(*) AS n FROM d GROUP BY tenant_id
    ), taken AS (
        -- the tenant's counter row stays locked until this transaction ends
        INSERT INTO product_change_seqs AS s (tenant_id, last_seq)
        SELECT tenant_id, n FROM counts ORDER BY tenant_id
        ON CONFLICT (tenant_id) DO UPDATE SET last_seq = s.last_seq + excluded.last_seq
        RETURNING s.tenant_id, s.last_seq
    )
    INSERT INTO product_changes (tenant_id, seq, product_id, sku, op, old_values, new_values,
                                 actor, request_id, import_job_id)
    SELECT d.tenant_id,
           t.last_seq - c.n + row_number() OVER (PARTITION BY d.tenant_id ORDER BY d.product_id),
           d.product_id, d.sku, d.op, d.old_values, d.new_values, $1 -> 'actor',
           $1 ->> 'request_id', ($1 ->> 'import_job_id')::uuid
    FROM d JOIN counts c ON c.tenant_id = d.tenant_id JOIN taken t ON t.tenant_id = d.tenant_id
  $q$, source) USING ctx;
  RETURN NULL;
END
$fn$
""",
]


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE product_change_seqs (
            tenant_id bigint PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
            last_seq bigint NOT NULL,
            -- entries up to this seq were pruned (retention): `after` below it cannot be served
            pruned_through bigint NOT NULL DEFAULT 0
        )
        """
    )
    op.execute(
        """
        CREATE TABLE product_changes (
            tenant_id bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            seq bigint NOT NULL,
            product_id bigint NOT NULL,
            sku text NOT NULL,
            op text NOT NULL CHECK (op IN ('created', 'updated', 'deleted')),
            -- the changed keys' values before and after the write (the API pairs them up):
            -- a create has only new_values (its whole state), a delete only old_values
            old_values jsonb,
            new_values jsonb,
            actor jsonb,
            request_id text,
            import_job_id uuid,
            at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_product_changes PRIMARY KEY (tenant_id, seq)
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_product_changes_product ON product_changes (tenant_id, product_id, seq)"
    )
    op.execute(
        "CREATE INDEX ix_product_changes_request ON product_changes (tenant_id, request_id) "
        "WHERE request_id IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX ix_product_changes_import ON product_changes (tenant_id, import_job_id) "
        "WHERE import_job_id IS NOT NULL"
    )
    # retention deletes by time: entries are appended in time order, a BRIN index is enough
    op.execute("CREATE INDEX ix_product_changes_at ON product_changes USING brin (at)")
    for function in FUNCTIONS:
        op.execute(function)
    op.execute(
        "CREATE TRIGGER products_log_insert AFTER INSERT ON products REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION pim_log_product_changes()"
    )
    op.execute(
        "CREATE TRIGGER products_log_update AFTER UPDATE ON products "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION pim_log_product_changes()"
    )
    op.execute(
        "CREATE TRIGGER products_log_delete AFTER DELETE ON products REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION pim_log_product_changes()"
    )


def downgrade() -> None:
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS products_log_{event} ON products")
    op.execute("DROP FUNCTION IF EXISTS pim_log_product_changes()")
    op.execute("DROP FUNCTION IF EXISTS pim_product_state(text, text, bigint[], text, text[], jsonb)")
    op.execute("DROP TABLE IF EXISTS product_changes")
    op.execute("DROP TABLE IF EXISTS product_change_seqs")
