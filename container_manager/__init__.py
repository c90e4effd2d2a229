"""Run containerized jobs from Django with full lifecycle tracking.

The public API lives in :mod:`container_manager.models` (the four models and the
job manager), :mod:`container_manager.executors` (the executor interface and its
errors) and the ``process_container_jobs`` management command.
"""

__version__ = "0.1.0"
