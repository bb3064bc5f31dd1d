"""The synthetic demo companies (a seeded generator) that the demo clients and tests use."""
