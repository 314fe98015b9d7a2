"""Execution: what runs on the throwaway database, and what it is checked against.

- ``roundtrip``: forward, backward and forward again, the one place migrations are applied;
- ``schema``: a snapshot of the schema after each step, and the difference between two;
- ``undo``: the SQL that would undo a difference a reverse left behind;
- ``checks``: the once-per-run checks that need no database (system checks, conflicts, models
  against migrations).
"""
