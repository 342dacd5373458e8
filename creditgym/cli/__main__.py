"""`python -m creditgym.cli`, as `creditgym` and `python -m creditgym` are."""

import sys

from creditgym.cli import main

sys.exit(main())
