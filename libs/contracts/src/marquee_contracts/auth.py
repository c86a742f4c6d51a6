"""Events the auth service publishes (owner: ``auth``)."""

from __future__ import annotations
