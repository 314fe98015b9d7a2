from __future__ import annotations

from guard.main import main

if __name__ == "__main__":
    raise SystemExit(main())
