"""Loading rule directories (router.engine.loader): every class of error with its file, line,
rule id and fix; all errors at once; versions; immutability."""

from __future__ import annotations

import textwrap
from pathlib import Path

import msgspec
import pytest

from router.engine.errors import RuleError, RulesetError
from router.engine.loader import load_directory, load_texts


def y(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


SCORING = y("""
    scoring:
      fit:
        - {id: fit.big, when: "employees >= 1000", points: 25}
      bant:
        - {id: bant.authority, when: 'matches(title, "(?i)vp")', points: 15}
    grades: {A: 80, B: 50, C: 0}
    qualification:
      - {status: sql, when: 'hit("bant.authority") and score >= 40'}
      - {status: mql, when: "score >= 20"}
""")
ROUTING = y("""
    territories:
      - {id: emea, when: 'region == "EMEA"'}
    segments:
      - {id: enterprise, when: "employees >= 1000"}
    pools:
      ent: {strategy: round_robin, members: [alice, bob]}
    assignment:
      - {id: owner, when: "true", assign: account_owner}
      - {id: ent, when: 'segment == "enterprise"', pool: ent}
""")
REPS = y("""
    reps:
      - {id: alice, timezone: Europe/Berlin, working_hours: {mon-fri: "09:00-17:00"}}
      - {id: bob}
""")
SLA = y("""
    sla:
      - {id: hot, when: 'status == "sql"', accept_within: 5m}
""")
BASE = {"scoring.yaml": SCORING, "routing.yaml": ROUTING, "reps.yaml": REPS, "sla.yaml": SLA}


def errors(files: dict[str, str]) -> list[RuleError]:
    with pytest.raises(RulesetError) as info:
        load_texts({**BASE, **files})
    assert str(info.value).startswith(f"{len(info.value.errors)} error")
    return info.value.errors


def one(name: str, text: str) -> RuleError:
    errs = errors({name: y(text)})
    assert len(errs) == 1, errs
    assert errs[0].file == name
    return errs[0]


def test_base_ruleset_loads() -> None:
    rs = load_texts(BASE)
    assert [r.id for r in rs.scoring.rules] == ["fit.big", "bant.authority"]
    assert rs.grades == (("A", 80), ("B", 50), ("C", 0))
    assert rs.files == ("reps.yaml", "routing.yaml", "scoring.yaml", "sla.yaml")
    assert rs.rules["qualification:qualification.1.sql"].line == 8


def test_yaml_syntax_error() -> None:
    err = one("sla.yaml", """
        sla:
          - {id: hot, when: 'status == "sql"', accept_within: 5m
        """)
    assert err.line == 3
    assert err.message.startswith("YAML syntax error")
    assert err.fix == "check indentation and quoting around this line"


def test_duplicate_yaml_key() -> None:
    err = one("sla.yaml", """
        sla:
          - id: hot
            when: 'status == "sql"'
            accept_within: 5m
            accept_within: 10m
        """)
    assert err.line == 5
    assert "duplicate key" in err.message
    assert err.fix == "remove or rename one of the two keys"


def test_unknown_section_did_you_mean() -> None:
    err = one("sla.yaml", """
        sla:
          - {id: hot, when: 'status == "sql"', accept_within: 5m}
        segmetns: []
        """)
    assert (err.line, err.rule) == (3, None)
    assert err.message == "unknown section `segmetns`"
    assert err.fix == "did you mean `segments`?"


def test_unknown_key_in_a_rule_did_you_mean_points() -> None:
    err = one("scoring.yaml", SCORING.replace("points: 25", "pionts: 25"))
    assert (err.line, err.rule) == (3, "fit.big")
    assert err.message == "unknown key `pionts`"
    assert err.fix == "did you mean `points`?"


def test_wrong_type() -> None:
    err = one("scoring.yaml", SCORING.replace("points: 25", 'points: "lots"'))
    assert (err.line, err.rule) == (3, "fit.big")
    assert err.message == "Expected `int | float`, got `str`"
    assert err.fix == "fix the value's type or format (see docs/rules.md)"


def test_invalid_enum_names_the_pool() -> None:
    errs = errors({"routing.yaml": ROUTING.replace("strategy: round_robin", "strategy: rr")})
    err = errs[0]
    assert (err.file, err.line, err.rule) == ("routing.yaml", 6, "ent")
    assert err.message == "`rr` is not a valid strategy"
    assert err.fix == "use one of: round_robin, weighted_round_robin, least_loaded"
    # The pool that did not decode is reported once: the rule using it adds no follow-on
    # "pool `ent` does not exist" error.
    assert errs[1:] == []
    err = errors({"routing.yaml": ROUTING.replace("round_robin", "roundrobin")})[0]
    assert err.fix == "did you mean `round_robin`?"


def test_missing_required_field() -> None:
    errs = errors({"scoring.yaml": SCORING.replace(", points: 15", "")})
    err = errs[0]
    assert (err.file, err.line, err.rule) == ("scoring.yaml", 5, "bant.authority")
    assert err.message == "missing `points`"
    assert err.fix == "add `points: ...`"
    # no follow-on: hit("bant.authority") refers to the rule reported above
    assert errs[1:] == []


def test_duplicate_rule_ids_within_a_stage() -> None:
    err = one("scoring.yaml", SCORING.replace("id: bant.authority", "id: fit.big")
              .replace('hit("bant.authority")', 'hit("fit.big")'))
    assert (err.line, err.rule) == (5, "fit.big")
    assert err.message == "duplicate scoring id `fit.big` (first defined at line 3)"
    assert err.fix == "give every rule its own id"


def test_same_id_in_different_stages_is_fine() -> None:
    # `ent` is both a pool id and an assignment rule id; `emea` could be a segment too.
    load_texts({**BASE, "routing.yaml": ROUTING.replace("id: enterprise", "id: emea")
                .replace('"enterprise"', '"emea"')})


def test_unknown_pool_rep_and_territory_references() -> None:
    errs = errors({"routing.yaml": ROUTING
                   + '  - {id: to-pool, when: "true", pool: entt}\n'
                   + '  - {id: to-rep, when: "true", owner: alise}\n'
                   + """  - {id: to-terr, when: 'territory == "emae"', queue: q}\n"""})
    assert [(e.line, e.rule, e.message, e.fix) for e in errs] == [
        (10, "to-pool", "pool `entt` does not exist", "did you mean `ent`?"),
        (11, "to-rep", "rep `alise` does not exist", "did you mean `alice`?"),
        (12, "to-terr", '"emae" is not a known territory (at `territory == "emae"`)',
         'did you mean "emea"?'),
    ]


def test_pool_member_not_a_rep() -> None:
    err = one("routing.yaml", ROUTING.replace("[alice, bob]", "[alice, bobby]"))
    assert (err.line, err.rule) == (6, "ent")
    assert err.message == "pool member `bobby` is not a rep"
    assert err.fix == "did you mean `bob`?"


def test_overflow_to_unknown_pool_and_overflow_loops() -> None:
    errs = errors({"routing.yaml": ROUTING.replace("members: [alice, bob]}", y("""
        members: [alice], overflow: {pool: b}}
          b: {strategy: round_robin, members: [bob], overflow: {pool: ent}}
          c: {strategy: least_loaded, members: [bob], overflow: {pool: nowhere}}
        """).rstrip())})
    assert [(e.line, e.rule, e.message, e.fix) for e in errs] == [
        (6, "ent", "overflow chain loops: ent → b → ent", "end the chain with a queue"),
        (7, "b", "overflow chain loops: b → ent → b", "end the chain with a queue"),
        (8, "c", "overflow pool `nowhere` does not exist", "known pools: b, c, ent"),
    ]


def test_assignment_rule_with_two_targets() -> None:
    err = one("routing.yaml", ROUTING.replace("pool: ent}", "pool: ent, queue: inbox}"))
    assert (err.line, err.rule) == (9, "ent")
    assert err.message == "an assignment rule needs exactly one of assign / owner / pool / queue"
    assert err.fix == "e.g. `pool: na-ent` or `queue: unassigned`"


@pytest.mark.parametrize(("value", "message"), [
    ("5x", "'5x' is not a duration"), ("0", "a duration must be positive"),
    ("0m", "a duration must be positive"),
])
def test_bad_duration(value: str, message: str) -> None:
    err = one("sla.yaml", SLA.replace("5m", value))
    assert (err.line, err.rule, err.message) == (2, "hot", message)
    assert err.fix == "write e.g. 30s, 5m, 4h, 2d or 1h30m"


def test_bad_time_zone_did_you_mean() -> None:
    err = one("reps.yaml", REPS.replace("Europe/Berlin", "Europe/Berln"))
    assert (err.line, err.rule) == (2, "alice")
    assert err.message == "unknown time zone `Europe/Berln`"
    assert err.fix == "did you mean `Europe/Berlin`?"


@pytest.mark.parametrize(("hours", "message"), [
    ('{mon-fri: "9-17"}', "'9-17' is not a time range like 09:00-17:00"),
    ('{funday: "09:00-17:00"}', "unknown day 'funday'"),
    ('{mon: "17:00-09:00"}', "'17:00-09:00' ends before it starts (split overnight shifts "
     "into two days)"),
    ('{mon: "09:00-25:00"}', "'09:00-25:00' is not a valid time range"),
])
def test_bad_working_hours(hours: str, message: str) -> None:
    err = one("reps.yaml", REPS.replace('{mon-fri: "09:00-17:00"}', hours))
    assert (err.line, err.rule, err.message) == (2, "alice", message)
    assert err.fix == 'write days and ranges like {mon-fri: "09:00-17:00"}'


def test_expression_error_is_reported_on_the_when_line() -> None:
    err = one("scoring.yaml", SCORING.replace('"employees >= 1000"', '"employees >= \'1000\'"'))
    assert (err.line, err.rule) == (3, "fit.big")
    assert err.message == "employees is number but \"1000\" is text (at `employees >= '1000'`)"
    assert err.fix == "compare values of the same kind (numbers without quotes)"


def test_expression_error_in_a_block_scalar_names_its_own_line() -> None:
    err = one("sla.yaml", """
        sla:
          - id: hot
            when: |
              (status == "sql"
               and employes > 10)
            accept_within: 5m
        """)
    assert (err.line, err.rule) == (5, "hot")
    assert err.message == "unknown name `employes` (at `employes > 10)`)"
    assert err.fix == "did you mean `employees`?"


def test_expression_error_on_the_first_line_of_a_block_scalar() -> None:
    err = one("sla.yaml", """
        sla:
          - id: hot
            when: >-
              status == "hot"
            accept_within: 5m
        """)
    assert (err.line, err.rule) == (4, "hot")
    assert err.message.startswith('"hot" is not a known status')


def test_section_defined_in_two_files() -> None:
    errs = errors({"extra.yaml": "sla:\n  - {id: x, when: 'true', accept_within: 1m}\n"})
    assert [(e.file, e.line, e.message, e.fix) for e in errs] == [
        ("sla.yaml", 1, "section `sla` is also defined in extra.yaml",
         "keep each section in one file")]


def test_reject_reasons_are_validated() -> None:
    err = one("sla.yaml", SLA + "reject_reasons: [spam, 'not ok!']\n")
    assert err.line == 3
    assert "matching regex" in err.message


def test_all_errors_are_reported_at_once() -> None:
    errs = errors({"scoring.yaml": y("""
        scoring:
          fit:
            - {id: fit.big, when: "employees >= 1000", pionts: 25}
            - {id: fit.usa, when: 'country == "USA"', points: 5}
          fitness:
            - {id: x, when: "true", points: 1}
        grades: {A: 80, B: "fifty"}
        qualification:
          - {status: hot, when: "score > 1"}
          - {status: sql, when: "score >"}
        """)})
    assert [(e.file, e.line) for e in errs] == [("scoring.yaml", n) for n in (3, 4, 5, 7, 9, 10)]
    assert [e.rule for e in errs] == ["fit.big", "fit.usa", None, None, None,
                                      "qualification.2.sql"]
    assert [e.fix for e in errs][:3] == ["did you mean `points`?", 'did you mean "US"?',
                                          "did you mean `fit`?"]
    assert errs[3].message == "Expected `int | float`, got `str`"
    assert errs[4].message == "`hot` is not a valid status"
    assert errs[5].message.startswith("syntax error")


def test_errors_across_files_are_all_reported() -> None:
    errs = errors({"reps.yaml": REPS.replace("Europe/Berlin", "Mars/Base"),
                   "sla.yaml": SLA.replace("5m", "soon"),
                   "routing.yaml": ROUTING.replace("pool: ent}", "pool: none}")})
    assert [(e.file, e.rule) for e in errs] == [("reps.yaml", "alice"), ("routing.yaml", "ent"),
                                                ("sla.yaml", "hot")]


def test_empty_and_missing_directories(tmp_path: Path) -> None:
    with pytest.raises(RulesetError) as info:
        load_directory(tmp_path)
    [err] = info.value.errors
    assert (err.file, err.message) == (str(tmp_path), "no rule files found")
    assert err.fix == "add scoring.yaml, routing.yaml, sla.yaml, reps.yaml"
    with pytest.raises(RulesetError) as info:
        load_directory(tmp_path / "nope")
    assert info.value.errors[0].message == "rules directory not found"
    with pytest.raises(RulesetError):
        load_texts({})


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def test_load_directory_reads_yaml_files_but_not_tests(tmp_path: Path) -> None:
    root = write(tmp_path / "rules", {**BASE, "sla.yml": SLA.replace("sla:", "sla: []\nx:")})
    (root / "sla.yml").unlink()
    write(root / "tests", {"case.yaml": "not: [a rules file"})
    rs = load_directory(root)
    assert rs.version == load_texts(BASE).version
    assert {Path(f).name for f in rs.files} == set(BASE)


def test_directory_errors_name_the_file(tmp_path: Path) -> None:
    root = write(tmp_path, {**BASE, "sla.yaml": SLA.replace("5m", "5x")})
    with pytest.raises(RulesetError) as info:
        load_directory(root)
    assert [(e.file, e.line) for e in info.value.errors] == [(str(root / "sla.yaml"), 2)]
    (root / "bad.yaml").write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(RulesetError) as info:
        load_directory(root)
    assert info.value.errors[0].message.startswith("cannot read file")


def test_version_is_sha256_hex_and_ignores_formatting(tmp_path: Path) -> None:
    v = load_texts(BASE).version
    assert len(v) == 64 and int(v, 16) >= 0
    reformatted = {**BASE, "sla.yaml": y("""
        # the SLA policies
        sla:
          -   accept_within: 5m      # five minutes
              when:   'status == "sql"'
              id: hot
        """), "reps.yaml": REPS + "\n\n# trailing comment\n"}
    assert load_texts(reformatted).version == v
    assert load_directory(write(tmp_path / "a", BASE)).version == v
    assert load_directory(write(tmp_path / "b" / "c", BASE)).version == v


def test_version_changes_when_a_rule_changes() -> None:
    v = load_texts(BASE).version
    assert load_texts({**BASE, "sla.yaml": SLA.replace("5m", "6m")}).version != v
    assert load_texts({**BASE, "scoring.yaml": SCORING.replace("25", "26")}).version != v
    assert load_texts({**BASE, "scoring.yaml": SCORING.replace(">= 1000", ">= 999")}).version != v


def test_ruleset_is_immutable() -> None:
    rs = load_texts(BASE)
    with pytest.raises(AttributeError):
        rs.version = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        rs.scoring.rules[0].points = 99.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        rs.scoring.fn = None  # type: ignore[misc]
    with pytest.raises(AttributeError):
        rs.pools["ent"].strategy = "least_loaded"  # type: ignore[misc]
    assert isinstance(rs.scoring.rules, tuple)
    for struct in (rs, rs.scoring, rs.scoring.rules[0], rs.pools["ent"], rs.reps["alice"],
                   rs.sla_policies["hot"]):
        assert type(struct).__struct_config__.frozen, type(struct)
    assert isinstance(rs, msgspec.Struct)


def test_custom_functions_are_usable_in_rules() -> None:
    from router.engine.functions import BOOL, BUILTINS, STR, Function

    fns = {**BUILTINS, "is_partner": Function(name="is_partner", impl=lambda d: d == "acme.com",
                                              params=(STR,), returns=BOOL, doc="",
                                              example="is_partner(company_domain)")}
    files = {**BASE, "sla.yaml": SLA.replace("status == \\\"sql\\\"", "x")
             .replace("'status == \"sql\"'", "is_partner(company_domain)")}
    load_texts(files, functions=fns)
    with pytest.raises(RulesetError) as info:
        load_texts(files)
    assert info.value.errors[0].message.startswith("unknown function `is_partner`")
