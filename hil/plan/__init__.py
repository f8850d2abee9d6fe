"""Declarative test plans: schema, loader, validation against a bench, runner."""
