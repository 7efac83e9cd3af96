"""`python -m simulators ...`: see `simulators.cli`."""

from simulators.cli import app

if __name__ == "__main__":
    app()
