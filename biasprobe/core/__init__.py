"""Shared foundations of every stage: errors, rounding, hashing, file I/O, table schemas,
typed records and run manifests. Nothing here imports torch or another biasprobe package."""
