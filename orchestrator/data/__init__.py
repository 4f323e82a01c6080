"""Training data: the indexed datasets Megatron reads, checked (``index``) and made (``prepare``)."""
