"""Real infrastructure for every test: see marquee_platform.testing."""

pytest_plugins = ["marquee_platform.testing"]
