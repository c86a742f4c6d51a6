"""The fair virtual waiting room: queues, positions and admissions."""
