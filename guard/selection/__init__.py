"""Selection: which migrations a run tests.

- ``paths``: migration files and the last N of each app, mapped to migrations through Django's
  loader (the Django side; no git);
- ``changes``: what git says changed, in branch, push and full mode;
- ``git``: the one module that talks to git (the only importer of GitPython); ``base`` (the branch
  compared with) and ``push`` (what a push brings) ask git through it;
- ``semantic``: whether a modified migration still means the same code.
"""
