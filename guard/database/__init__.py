"""Database: where PostgreSQL comes from, the databases made on it, and the cached bases.

- ``server``: a server's address and the connections to it (the vocabulary of this part);
- ``throwaway``: the databases a run creates and drops, and the sweep of dead runs' ones;
- ``providers``: ``--db URL|settings|local|docker|auto``, choosing among
  - ``cluster`` (a throwaway local cluster), ``warm`` (the local cluster kept between runs),
    ``container`` (Docker),
  - with ``binaries`` (finding PostgreSQL), ``postmaster`` (running a server process), ``users``
    and ``relocation`` (running it as an unprivileged user), ``cachedir`` and ``filelock`` (the
    cache folder the warm cluster lives in);
- ``cache``: base states kept as template databases, cloned by later runs;
- ``aliases``: which of the project's ``DATABASES`` aliases a run tests.
"""
