import sys

from mrjax.cli import main

sys.exit(main())
