"""bgbench: a benchmark and leaderboard suite for video background subtraction."""

__version__ = "0.1.0"
