"""Rows: what the tables hold while the round trip runs.

Its settings (:mod:`.config`), the generated rows (:mod:`.generated`) and their values
(:mod:`.values`) fitted to what each model says it allows (:mod:`.fieldrules`), and the project's
own seed and fixtures on top (:mod:`.seeding`).
"""
