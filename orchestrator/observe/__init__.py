"""Reading runs back: Megatron log parsing, FLOPs, diagnosis, status rows and the report."""
