"""Demo tasks and the ``longops demo`` runner."""
