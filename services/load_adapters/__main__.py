"""`python -m services.load_adapters`: run the load-adapters service."""

from shared.cli import main_for

main_for("load-adapters")
