"""Scoring: counts like the official CDnet2014 comparator, PR curves, files on disk, aggregation."""
