from __future__ import annotations

from guard.main import run

if __name__ == "__main__":
    run()
