"""Safety: what a migration does to a live site's tables, and whether that is acceptable.

Its settings (:mod:`.config`), the measuring of each step (:mod:`.measuring`), the findings made
of it (:mod:`.findings`) with what to do instead (:mod:`.advice`), and which findings fail the
run (:mod:`.policy`).
"""
