"""Pydantic models shared by every domain: settings, tariffs, policies, CDRs, API bodies."""
