"""The contract is defined once: the API doc matches the models, and no topic is spelled outside topics.py."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

from shared import apidoc

ROOT = Path(__file__).resolve().parents[2]
# An ampmq topic spelled by hand: the root, or one of the tree's kind/leaf segments between slashes.
TOPIC_LITERAL = re.compile(
    r"(^|[\"'])ampmq/|/(load|charger|meter)/[^/\s]+/|/(measurement|setpoint|decision|errors)(/|$)|/settings/set\b"
)
# topics.py spells the tree; test_topics.py checks that spelling.
ALLOWED = {ROOT / "shared" / "topics.py", ROOT / "tests" / "foundation" / "test_topics.py"}


def test_api_doc_is_current() -> None:
    written = (ROOT / "docs" / "mqtt-api.md").read_text()
    assert written == apidoc.render(), "docs/mqtt-api.md is out of date: run `python -m shared.apidoc`"


def test_every_topic_builder_is_documented() -> None:
    documented = {apidoc._pattern(e.topic) for e in apidoc.ENTRIES}
    assert len(documented) == len(apidoc.ENTRIES)
    for leaf in ("state", "setpoint", "settings", "settings/set", "availability"):
        assert f"ampmq/<site>/load/<load>/{leaf}" in documented


def _string_literals(path: Path) -> list[tuple[int, str]]:
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == tokenize.STRING or tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
            found.append((tok.start[0], tok.string))
    return found


def test_no_topic_string_literal_outside_topics_module() -> None:
    offenders = []
    for folder in ("shared", "services", "bench", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path in ALLOWED or path == Path(__file__).resolve():
                continue
            for line, literal in _string_literals(path):
                if literal.lstrip("rbuf").startswith(('"""', "'''")):
                    continue  # docstrings may describe topics
                if TOPIC_LITERAL.search(literal):
                    offenders.append(f"{path.relative_to(ROOT)}:{line}: {literal}")
    assert not offenders, "build topics with shared.topics.Topics:\n" + "\n".join(offenders)
