"""Events the events (catalog) service publishes (owner: ``events``)."""

from __future__ import annotations
