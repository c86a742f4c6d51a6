"""The search index of events, rebuilt from the events change stream."""
