"""The OCPP gateway: ampmq's OCPP 1.6J / 2.0.1 central system, bridged to MQTT (see docs/ocpp-gateway.md).

Modules: :mod:`.config` (the config section), :mod:`.passwords` (stored password hashes),
:mod:`.handshake` (who connects, auth, subprotocol), :mod:`.session` (OCPP-J framing shared by both
versions), :mod:`.v16` and :mod:`.v201` (what chargers say, one ``@on`` handler per action),
:mod:`.meter` (meter values → ConnectorMeter), :mod:`.schemas` (fast schema checks of what chargers send),
:mod:`.commands` (the command channel), :mod:`.registry` (live sessions), :mod:`.outbox` (the bounded
way out to MQTT), :mod:`.gateway` (the server tying them together) and :mod:`.service` (``serve``).
"""
