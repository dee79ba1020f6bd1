"""`python -m descpipe` is the `descpipe` command."""
import sys

from .cli import main

sys.exit(main())
