"""Deep background-subtraction methods, registered lazily by name."""
