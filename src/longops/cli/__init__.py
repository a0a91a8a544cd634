"""The ``longops`` command."""
