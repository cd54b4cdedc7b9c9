"""`python -m grader ...`: see grader.commands.cli."""

import sys

from grader.commands.cli import main

if __name__ == "__main__":
    sys.exit(main())
