"""Durable files: atomic writes, checksummed save directories, and the readers-writer lock of stores and indexes."""
