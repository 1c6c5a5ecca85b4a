"""Launchers: start, watch and stop a job's processes on one kind of compute."""
