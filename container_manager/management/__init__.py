"""Django management commands of container_manager."""
