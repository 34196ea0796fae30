"""Test helpers that are real implementations, not mocks: fake LLM backends speaking real HTTP."""
