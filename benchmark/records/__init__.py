"""Records: typed results, the results file on disk and provenance (code and content identity)."""
