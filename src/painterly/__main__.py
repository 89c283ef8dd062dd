import sys

from painterly.cli import main

sys.exit(main())
