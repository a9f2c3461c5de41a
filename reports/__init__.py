"""Tables, curves, plots and the leaderboard: they read results records only."""
