"""orchestrator: launch DeepSeek-V3 pre-training with Megatron-Core on Slurm, and prove the speed you got."""

__version__ = "0.1.0"
