"""The capabilities' contract (``shared.caps_schema``) as a test assertion:
every lane checks it on the reports of the host shapes it builds."""

from __future__ import annotations

from shared.caps_schema import problems


def assert_caps_contract(caps: dict, answer: bool = False) -> dict:
    """Fails listing every key whose type differs from the agent's;
    ``answer``: a verb's answer (it carries ``netConfigDirty``). Returns
    ``caps`` for chaining."""
    found = problems(caps, answer=answer)
    assert not found, "capabilities differ from the agent's contract:\n" + "\n".join(found)
    return caps
