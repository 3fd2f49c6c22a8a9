"""How good the faces are: the metrics' maths (`metrics.py`), the features they compare
(`features.py`: the shipped anime encoder of `encoder.py`, or InceptionV3), the disturbances that
check them (`degrade.py`, `sanity.py`), and the scoring of a generator (`scorer.py`)."""
