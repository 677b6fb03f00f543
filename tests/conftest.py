"""Shared pytest configuration. Service fixtures (PostgreSQL, Kafka) live in tests/fixtures/."""

pytest_plugins: list[str] = ["tests.fixtures.postgres", "tests.fixtures.kafka"]
