"""Seat and quantity inventory, holds and sold state."""
