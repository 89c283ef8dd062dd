import sys

from painterly.apps.cli import main

sys.exit(main())
