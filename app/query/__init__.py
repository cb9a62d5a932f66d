"""One predicate language for "which products": the segment DSL's tree, parsed from the DSL, the
list's query-string filters and the PIMS filters, and compiled to SQL by one compiler.

- `models`: the DSL (groups, negations, conditions) and the checked tree every syntax becomes
  (`Junction`, `Not`, `Test` leaves on a `Target`);
- `parsing`: the DSL's shape and limits, and its resolution against a schema into that tree;
- `querystring`: the list's `?brand=…&price__gte=…` filters into that tree;
- `compiling`: the tree to a SQL predicate (raw `$n` SQL for the lean reads, a SQLAlchemy clause
  for segments), with the typed value expression of each field type;
- `categories`: the category-subtree query.
"""
