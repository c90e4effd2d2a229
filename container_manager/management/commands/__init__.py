"""The ``process_container_jobs`` and other management commands."""
