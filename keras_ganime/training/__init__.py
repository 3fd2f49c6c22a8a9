"""Training around an engine: the loop (`loop.py`: steps, checkpoints, grids, evaluations,
milestones, the failure rules) and its TensorBoard scalars (`scalars.py`)."""
