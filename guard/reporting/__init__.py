"""Reporting: what a person or a CI job reads.

- ``model``: the :class:`~guard.reporting.model.Report` every writer reads;
- ``progress``: lines on stderr while the run goes;
- ``text``, ``json_report``, ``junit``, ``github`` (annotations and step summary): the writers;
- ``writers``: each ``--format`` to its file or stdout.
"""
