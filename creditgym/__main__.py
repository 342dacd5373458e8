from creditgym.cli import main
import sys

sys.exit(main())
