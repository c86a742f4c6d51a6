"""Users, roles, credentials and tokens; publishes the JWKS every service verifies against."""
