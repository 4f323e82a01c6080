"""``python -m orchestrator.node [--preflight] SPEC_PATH``: the node entry (see ``orchestrator.node.entry``)."""

import sys

from orchestrator.node.entry import main

if __name__ == "__main__":
    sys.exit(main())
