"""Pure rules of longops: no I/O, no SQL, no threads. Imports nothing else from longops."""
