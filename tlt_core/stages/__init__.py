"""Stage functions: one plain function per stage, called by the CLI and the KFP components.

Each returns a small dataclass and never reads argv or the environment.
"""
