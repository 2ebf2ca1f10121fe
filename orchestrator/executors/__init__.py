"""Executors: where each kind of step runs (asyncio, threads, processes)."""
