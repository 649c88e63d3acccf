"""Nexus: an AI gateway that makes LLM use safe across an enterprise."""

from nexus.celery import app as celery_app

__all__ = ["celery_app"]
