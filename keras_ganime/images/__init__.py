"""Images between their forms (`convert.py`: uint8 pixels, floats in [-1, 1], a generator's
output) and the pictures made of them (`viz.py`: grids, loss and metric plots, animations)."""
