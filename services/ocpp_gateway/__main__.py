"""`python -m services.ocpp_gateway`: run the ocpp-gateway service."""

from shared.cli import main_for

main_for("ocpp-gateway")
