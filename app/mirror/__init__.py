"""The ClickHouse read model of products: counts, facets and id pages of large tenants.

- `model`: the table's rows (what each column holds, built in Postgres) and the state row;
- `apply`: the worker's side, change-log entries applied in batches, and the rebuild;
- `reads`: the API's side, the freshness check (read-your-writes) and the queries, compiled from
  the one predicate tree by `app.query.clickhouse`;
- `tasks`: the worker loop woken by Postgres NOTIFY.
"""
