"""`python -m dashboards`: regenerate dashboards/generated/*.json; `--check`: exit 1 if they are stale."""

from __future__ import annotations

import sys

from dashboards.generate import stale, write


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        outdated = stale()
        for path in outdated:
            print(f"stale: {path} (run `python -m dashboards`)")
        return 1 if outdated else 0
    if argv:
        print("usage: python -m dashboards [--check]", file=sys.stderr)
        return 2
    for path in write():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
