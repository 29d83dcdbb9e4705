"""`python -m gradjit ...`: the command line (see gradjit/cli.py)."""
from gradjit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
