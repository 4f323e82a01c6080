"""``python -m orchestrator.train``: the bundled training entry, kept at this name for rendered job specs.

Runs ``orchestrator.node.train`` as ``__main__`` (its module start time is the timing reference).
"""

import runpy

if __name__ == "__main__":
    runpy.run_module("orchestrator.node.train", run_name="__main__", alter_sys=True)
