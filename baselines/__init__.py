"""Classical background-subtraction baselines.

Each is registered by its ``bgbench.methods`` entry point in pyproject.toml; its metadata
(family, configs, summary, ``requires``) is written once, on the class, and read from
the source without importing OpenCV, torch or BGSLibrary (benchmark/catalog.py). Keep this
package's ``__init__`` free of imports: reading a submodule's source finds this package.
"""
