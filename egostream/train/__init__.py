"""Training stages: single-task, multi-task and EgoPack."""
