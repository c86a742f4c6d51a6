"""Messages, preferences and schedules: what a person should hear about."""
