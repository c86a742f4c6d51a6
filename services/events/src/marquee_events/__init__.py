"""Venues, seating maps, events, ticket types and reviews."""
