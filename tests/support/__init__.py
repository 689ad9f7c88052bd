"""Test infrastructure: real Redis servers and real Celery worker processes."""
