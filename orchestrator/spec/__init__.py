"""What the user asks for, as typed values: cluster profiles, recipes, sweeps, pipeline layout, and the Megatron
flags (per version) they become. Pure: reads YAML, never submits or runs anything."""
