"""The live sessions, one per charger topic id: a reconnecting charger replaces its old session."""

from __future__ import annotations

from collections.abc import Iterator

from .session import ChargerMemory, ChargerSession


class Registry:
    """Who is connected now, and what the gateway remembers about each charger across reconnects."""

    def __init__(self) -> None:
        self._sessions: dict[str, ChargerSession] = {}
        self._memory: dict[str, ChargerMemory] = {}
        #: topic id -> charge point id, for every charger seen (so two ids never share topics).
        self._owners: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[ChargerSession]:
        return iter(list(self._sessions.values()))

    def get(self, charger: str) -> ChargerSession | None:
        return self._sessions.get(charger)

    def owner(self, charger: str) -> str | None:
        return self._owners.get(charger)

    def memory(self, charger: str) -> ChargerMemory:
        return self._memory.setdefault(charger, ChargerMemory())

    def add(self, session: ChargerSession) -> ChargerSession | None:
        """Make ``session`` the charger's live session; returns the session it replaces, if any."""
        old = self._sessions.get(session.charger)
        self._sessions[session.charger] = session
        self._owners[session.charger] = session.admission.ocpp_id
        return old

    def remove(self, session: ChargerSession) -> bool:
        """Forget ``session`` if it is still the live one (False when a newer session replaced it)."""
        if self._sessions.get(session.charger) is session:
            del self._sessions[session.charger]
            return True
        return False
