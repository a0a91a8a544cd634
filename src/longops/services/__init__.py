"""Periodic background duties, each with ``run_once()``; leader-elected so each runs once
across many workers."""
