"""Execution: what runs on the throwaway database, and what it is checked against.

- ``roundtrip``: forward, backward and forward again, the one place migrations are applied;
- ``runs``: the round trip on every tested alias, each on a throwaway database of its own;
- ``routing``: what the routers allowed, so that a migration they turned into no-ops does not
  pass;
- ``schema``: a snapshot of the schema after each step, and the difference between two;
- ``undo``: the SQL that would undo a difference a reverse left behind;
- ``checks``: the once-per-run checks that need no database (system checks, conflicts, models
  against migrations).
"""
