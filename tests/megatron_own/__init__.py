"""Megatron's own argument check over what the toolkit renders (named megatron_own: a test package called
``megatron`` would shadow megatron-core for every test that imports it)."""
