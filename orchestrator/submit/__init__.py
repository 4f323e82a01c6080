"""Login side: validate an experiment, plan and render its files, write the run record and submit it."""
