"""The task-backend suites need Django 6 (django.tasks); on Django 5.2 they are not collected."""

import django

collect_ignore_glob = ["test_*.py", "sample_tasks.py"] if django.VERSION < (6, 0) else []
