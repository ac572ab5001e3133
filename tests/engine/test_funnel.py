"""rules/funnel.yaml (router/engine/funnel.py): the default without the file, the shipped file,
a custom funnel, and every check with its file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from router.engine.errors import RuleError, RulesetError
from router.engine.funnel import DEFAULT_FUNNEL
from router.engine.loader import load_directory, load_texts
from router.intake.config import compile_intake

ROOT = Path(__file__).resolve().parents[2]
BASE = {"scoring.yaml": textwrap.dedent("""\
    scoring:
      fit:
        - {id: fit.big, when: "employees >= 1000", points: 25}
    qualification:
      - {status: mql, when: "true"}
    """)}


def _errors(text: str, **extra: str) -> list[RuleError]:
    with pytest.raises(RulesetError) as info:
        load_texts({**BASE, "funnel.yaml": textwrap.dedent(text), **extra},
                   intake=compile_intake)
    return info.value.errors


def test_without_funnel_yaml_the_default_funnel_applies() -> None:
    ruleset = load_texts(BASE)
    assert ruleset.funnel == DEFAULT_FUNNEL
    assert DEFAULT_FUNNEL.chain == ("accepted", "contacted", "meeting", "opportunity", "won")
    assert DEFAULT_FUNNEL.pairs() == (
        ("routed", "accepted"), ("accepted", "contacted"), ("contacted", "meeting"),
        ("meeting", "opportunity"), ("opportunity", "won"), ("routed", "lost"),
        ("routed", "won"))


def test_the_shipped_funnel_is_the_default() -> None:
    assert load_directory(ROOT / "rules").funnel == DEFAULT_FUNNEL


def test_a_custom_funnel() -> None:
    funnel = load_texts({**BASE, "funnel.yaml": textwrap.dedent("""\
        funnel:
          stages: [accepted, contacted, demo, proposal, signed, disqualified]
          terminal: [signed, disqualified]
          exits: [disqualified]
          converted: proposal
          won: signed
        """)}).funnel
    assert funnel.chain == ("accepted", "contacted", "demo", "proposal", "signed")
    assert (funnel.won, funnel.converted) == ("signed", "proposal")
    assert funnel.exits == frozenset({"disqualified"})
    assert ("routed", "disqualified") in funnel.pairs() and ("routed", "signed") in funnel.pairs()


@pytest.mark.parametrize(("text", "line", "words"), [
    ("funnel:\n  stages: [accepted, contacted, won]\n  colour: red\n", 3,
     "unknown key `colour`"),
    ("funnel:\n  stages: [accepted, contacted, meeting, meeting]\n", 2, "listed twice"),
    ("funnel:\n  stages: [accepted, meeting]\n", 2, "`contacted` is missing"),
    ("funnel:\n  stages: [contacted, accepted]\n", 2, "out of order"),
    ("funnel:\n  stages: [accepted, contacted, won]\n  converted: opportunty\n", 3,
     "converted `opportunty` is not a stage"),
    ("funnel:\n  stages: [accepted, contacted, won, lost]\n  terminal: [won, lots]\n", 3,
     "did you mean `lost`?"),
    ("funnel:\n  stages: [accepted, contacted, won, lost]\n  terminal: [won]\n"
     "  exits: [lost]\n  converted: won\n", 4, "exit `lost` is not terminal"),
    ("funnel:\n  stages: [accepted, contacted, won, meeting]\n  terminal: [won]\n"
     "  converted: won\n", 3, "is followed by `meeting`"),
    ("funnel:\n  stages: [accepted, contacted, Won]\n", 2, "matching regex"),
])
def test_funnel_errors_name_file_and_line(text: str, line: int, words: str) -> None:
    errs = _errors(text)
    assert any(e.file == "funnel.yaml" and e.line == line and words in str(e) for e in errs), \
        [str(e) for e in errs]


def test_a_source_maps_deal_stages_to_funnel_stages_only() -> None:
    errs = _errors("funnel:\n  stages: [accepted, contacted, demo, won]\n  terminal: [won]\n"
                   "  converted: demo\n", **{"intake.yaml": textwrap.dedent("""\
        sources:
          hubspot:
            secret_env: X
            outcomes:
              stages: {closedwon: won, appointmentscheduled: meeting}
          crm:
            type: json
            outcomes:
              stages: {Won: won}
              fields: {external_id: deal.ref, colour: deal.colour}
        """)})
    text = [str(e) for e in errs]
    assert any("intake.yaml:5" in t and "`meeting` is not a funnel stage" in t for t in text), \
        text
    assert any("intake.yaml:10" in t and "`colour` is not an outcome field" in t for t in text)
    assert any("intake.yaml:8" in t and "fields: {stage: ...}" in t for t in text), text


def test_terminal_and_exits_default_to_won_and_lost() -> None:
    funnel = load_texts({**BASE, "funnel.yaml": "funnel:\n  stages: [accepted, contacted, "
                         "demo, opportunity, won, lost]\n"}).funnel
    assert funnel.terminal == frozenset({"won", "lost"}) and funnel.exits == frozenset({"lost"})
    assert funnel.chain[-1] == "won" and funnel.won == "won"
    bare = load_texts({**BASE, "funnel.yaml": "funnel:\n  stages: [accepted, contacted, deal]\n"
                       "  converted: deal\n"}).funnel
    assert (bare.terminal, bare.exits, bare.won) == (frozenset(), frozenset(), None)
