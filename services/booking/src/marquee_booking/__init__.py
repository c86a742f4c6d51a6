"""Orders, tickets, transfers and promo codes."""
