"""Deep background-subtraction methods.

Each is registered by its ``bgbench.methods`` entry point in pyproject.toml; its metadata
is written once, on the class (or on methods/common.py's DeepMethod), and read from the
source without importing torch (benchmark/catalog.py). Keep this package's ``__init__``
free of imports.
"""
