"""Run: the only part of orchestrator that owns concurrency."""
