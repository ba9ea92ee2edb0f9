"""`python -m services.allocator`: run the allocator service."""

from shared.cli import main_for

main_for("allocator")
