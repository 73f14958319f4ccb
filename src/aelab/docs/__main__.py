"""``python -m aelab.docs [TOPIC]``: the study-file reference as Markdown on stdout."""

import sys

from . import main

sys.exit(main())
