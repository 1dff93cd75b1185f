"""The assigner service."""
