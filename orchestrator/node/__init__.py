"""Node side: what runs on each rank (entry, binding, bundled training entry, preflight, capabilities, job spec).

Standard library only at import time: the node may have no jinja2/yaml/click/submitit."""
