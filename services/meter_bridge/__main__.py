"""`python -m services.meter_bridge`: run the meter-bridge service."""

from shared.cli import main_for

main_for("meter-bridge")
