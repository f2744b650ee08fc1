"""Prompt tuning (and model tuning) on a frozen T5: pure steps, optimizer, mesh, loop."""
