"""Integrations of migration-guard with other tools."""
