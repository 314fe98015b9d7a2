"""Planning: Django's migration graph, read without a database.

- ``graph``: loading the graph, dependents of the selection, the base set, the order, the
  project states between them;
- ``reversibility``: the operations Django cannot unapply, found before any database work.
"""
