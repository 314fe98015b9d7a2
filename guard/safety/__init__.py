"""Safety: what a migration does to a live site's tables, and whether that is acceptable.

Its settings (:mod:`.config`), the measuring of each step (:mod:`.measuring`), the findings made
of it (:mod:`.findings`) with what to do instead (:mod:`.advice`), production's sizes
(:mod:`.stats`, read back by :mod:`.statsfile`), the test server's measured speed
(:mod:`.calibration`), each finding's blocking time at production size (:mod:`.estimates`, put
together for a run by :mod:`.production`) and which findings fail the run (:mod:`.policy`).
"""
