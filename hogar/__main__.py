import sys

from hogar.cli import main

sys.exit(main())
