"""Nexus: an AI gateway that makes LLM use safe across an enterprise."""
