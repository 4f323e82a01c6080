"""Where jobs run: Slurm (sbatch/sacct/scancel) and the local machine."""
