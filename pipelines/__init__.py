"""Pure image work: numpy arrays in, frozen dataclasses out.

Nothing in this package imports web, database or queue code, so every stage can be
tested and benchmarked on its own.
"""

PIPELINE_VERSION = "0.1.0"
