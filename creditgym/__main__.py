import sys

from creditgym.cli import main

sys.exit(main())
