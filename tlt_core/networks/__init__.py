"""Networks: one folder of hooks per network (see docs/architecture.md)."""
