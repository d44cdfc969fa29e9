"""YAML input: every mistake in a user's file becomes an InputError naming file, line, field."""

from __future__ import annotations

import textwrap
from typing import Annotated, Literal, Union

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, model_validator
from yaml_mutations import mutated_lines

from rolloutlab.errors import FieldError, InputError
from rolloutlab.strategies.yaml_input import (
    MAX_EXPANDED_NODES,
    format_field_path,
    load_model_file,
    parse_duration,
    parse_yaml_documents,
    parse_yaml_file,
    validate_document,
)

# --- a small model shaped like a strategy spec ----------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class SetWeight(_Strict):
    kind: Literal["setWeight"]
    setWeight: int = Field(ge=0, le=100)


class Pause(_Strict):
    kind: Literal["pause"]
    duration: float = Field(gt=0)


Step = Annotated[Union[SetWeight, Pause], Field(discriminator="kind")]


class Canary(_Strict):
    steps: list[Step] = Field(default_factory=list)
    maxSurge: int = Field(1, ge=0)


class Spec(_Strict):
    name: str
    replicas: int = Field(3, ge=1)
    canary: Canary = Field(default_factory=Canary)
    labels: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_surge(self) -> Spec:
        if self.canary.maxSurge > self.replicas:
            raise FieldError(("canary", "maxSurge"), "maxSurge exceeds replicas")
        return self


SPEC = textwrap.dedent(
    """\
    # a canary spec
    name: web
    replicas: 4
    canary:
      maxSurge: 1
      steps:
        - kind: setWeight
          setWeight: 20
        - kind: pause
          duration: 30
        - kind: setWeight
          setWeight: 50
    labels: [a, b]
    """
)


def _doc(text: str = SPEC):
    (doc,) = parse_yaml_documents(text, "spec.yaml")
    return doc


# --- line numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ((), 2),
        (("name",), 2),
        (("canary",), 4),
        (("canary", "maxSurge"), 5),
        (("canary", "steps"), 6),
        (("canary", "steps", 0), 7),
        (("canary", "steps", 0, "setWeight"), 8),
        (("canary", "steps", 1, "duration"), 10),
        (("canary", "steps", 2, "setWeight"), 12),
        (("labels", 1), 13),
        (("canary", "steps", 2, "nonexistent", 7), 11),
        (("nonexistent",), 2),
    ],
    ids=[
        "document-start-is-first-content-line",
        "top-level-key",
        "nested-mapping-key",
        "key-inside-nested-mapping",
        "list-valued-key",
        "list-item-is-its-dash-line",
        "field-of-first-list-item",
        "field-of-second-list-item",
        "field-of-third-list-item",
        "flow-list-item",
        "unknown-tail-falls-back-to-deepest-known-prefix",
        "unknown-top-level-falls-back-to-document-start",
    ],
)
def test_line_of_points_at_the_node(path, line):
    """line_of gives the 1-based line of the deepest known prefix of a path."""
    assert _doc().line_of(path) == line


def test_merged_keys_take_the_line_of_the_override():
    """A key set by a `<<` merge and overridden locally points at the local override."""
    doc = _doc("base: &b {replicas: 2, name: x}\nspec:\n  <<: *b\n  replicas: 5\n")
    assert doc.data["spec"] == {"replicas": 5, "name": "x"}
    assert doc.line_of(("spec", "replicas")) == 4
    assert doc.line_of(("spec", "name")) == 1


# --- syntax errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("a: 1\nb: [1, 2\nc: 3\n", 3, "syntax error"),
        ("a: 1\n  b: 2\n", 2, "mapping values are not allowed"),
        ("a: 1\nb: 'open\n", 3, "syntax error"),
        ("a:\n  - 1\n - 2\n", 3, "syntax error"),
        ("a: 1\nb: *nowhere\n", 2, "undefined alias"),
        ("a: 1\nb: !!python/object:os.system x\n", 2, "constructor"),
        ("a: 1\nwhen: 2001-13-45\n", 2, "month must be in 1..12"),
        ("a: 1\nb: \x07\n", 2, "special characters"),
        ("a: 1\nb: !!int nope\n", 2, "cannot read 'nope' as int"),
        ("ok: 1\n? [a, b]\n: 2\n", 2, "unhashable"),
        ("\t- a\n", 1, "syntax error"),
    ],
    ids=[
        "unclosed-flow-list",
        "bad-indentation",
        "unclosed-quote",
        "dedented-list-item",
        "undefined-alias",
        "python-object-tag-refused",
        "impossible-date",
        "control-character",
        "explicit-tag-with-wrong-value",
        "list-as-mapping-key",
        "tab-indentation",
    ],
)
def test_yaml_errors_report_the_line(text, line, fragment):
    """A YAML error becomes an InputError carrying the line of the problem."""
    with pytest.raises(InputError) as info:
        parse_yaml_documents(text, "bad.yaml")
    assert info.value.file == "bad.yaml"
    assert info.value.line == line
    assert fragment in info.value.message


@pytest.mark.parametrize(
    "text",
    ["", "   \n", "# only a comment\n", "---\n", "---\n...\n---\n"],
    ids=["empty-string", "whitespace", "comment-only", "bare-separator", "empty-documents"],
)
def test_empty_input_is_an_error(text):
    """Input without any document is rejected rather than read as null."""
    with pytest.raises(InputError, match="empty input"):
        parse_yaml_documents(text, "empty.yaml")


# --- duplicate keys -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("a: 1\nb: 2\na: 3\n", 3, "'a'"),
        ("outer:\n  x: 1\n  y: 2\n  x: 3\n", 4, "'x'"),
        ("a: {b: 1, b: 2}\n", 1, "'b'"),
        ("items:\n  - name: a\n    name: b\n", 3, "'name'"),
        ("1: a\n0x1: b\n", 2, "1"),
        ("on: 1\nyes: 2\n", 2, "True"),
    ],
    ids=[
        "top-level",
        "nested-mapping",
        "flow-mapping",
        "inside-list-item",
        "same-integer-spelled-differently",
        "yaml11-booleans-on-and-yes",
    ],
)
def test_duplicate_keys_are_errors(text, line, key):
    """A key repeated in one mapping is an error at the repeat, naming the first line."""
    with pytest.raises(InputError) as info:
        parse_yaml_documents(text, "dup.yaml")
    assert info.value.line == line
    assert f"duplicate key {key}" in info.value.message
    assert "first defined on line" in info.value.message


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: {a: 2}\n",
        "base: &b {x: 1}\nc:\n  <<: *b\n  x: 2\n",
        "l:\n  - {x: 1}\n  - {x: 2}\n",
        "1: a\ntrue: b\n'1': c\n",
    ],
    ids=["same-key-in-different-mappings", "merge-override", "list-items", "distinct-types"],
)
def test_not_duplicates(text):
    """Equal keys in different mappings, merge overrides and distinct types are fine."""
    parse_yaml_documents(text, "ok.yaml")


# --- aliases ---------------------------------------------------------------------------------


def test_aliases_are_expanded():
    """Anchors and aliases work as in any YAML reader."""
    doc = _doc("a: &x [1, 2]\nb: *x\n")
    assert doc.data == {"a": [1, 2], "b": [1, 2]}


def test_recursive_alias_is_an_error():
    """A node that contains an alias to itself is rejected instead of recursing."""
    with pytest.raises(InputError, match="recursive alias"):
        parse_yaml_documents("a: &x\n  - *x\n", "rec.yaml")


def test_alias_bomb_is_an_error():
    """Nested aliases that expand past MAX_EXPANDED_NODES are rejected quickly."""
    lines = ["l0: &l0 [a, a, a, a, a, a, a, a, a, a]"]
    for i in range(1, 9):
        refs = ", ".join([f"*l{i - 1}"] * 10)
        lines.append(f"l{i}: &l{i} [{refs}]")
    assert 10**9 > MAX_EXPANDED_NODES
    with pytest.raises(InputError, match="expands to more than"):
        parse_yaml_documents("\n".join(lines) + "\n", "bomb.yaml")


def test_deep_nesting_is_an_error():
    """Absurdly deep nesting is an InputError, not a RecursionError."""
    with pytest.raises(InputError):
        parse_yaml_documents("[" * 5000 + "]" * 5000, "deep.yaml")


# --- multiple documents ---------------------------------------------------------------------


def test_multi_document_stream():
    """Each document of a stream is returned with its own start line and line map."""
    text = "a: 1\n---\n# second\nb:\n  c: 2\n---\n---\nd: 3\n"
    docs = parse_yaml_documents(text, "multi.yaml")
    assert [d.data for d in docs] == [{"a": 1}, {"b": {"c": 2}}, {"d": 3}]
    assert [d.start_line for d in docs] == [1, 4, 8]
    assert docs[1].line_of(("b", "c")) == 5
    assert all(d.file == "multi.yaml" for d in docs)


def test_load_model_file_requires_one_document(tmp_path):
    """load_model_file rejects a stream with several documents, at the second one."""
    path = tmp_path / "two.yaml"
    path.write_text("name: a\n---\nname: b\n")
    with pytest.raises(InputError, match="exactly one YAML document") as info:
        load_model_file(path, Spec)
    assert info.value.line == 3


def test_load_model_file_validates(tmp_path):
    """load_model_file returns the validated model of a one-document file."""
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    spec = load_model_file(path, Spec)
    assert spec.canary.steps[2].setWeight == 50


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p / "missing.yaml",
        lambda p: p,
        lambda p: (p / "latin1.yaml", (p / "latin1.yaml").write_bytes(b"a: \xff\n"))[0],
    ],
    ids=["missing-file", "directory", "not-utf8"],
)
def test_unreadable_file_is_an_input_error(tmp_path, make):
    """A file that cannot be read as UTF-8 text is an InputError naming it."""
    path = make(tmp_path)
    with pytest.raises(InputError) as info:
        parse_yaml_file(path)
    assert info.value.file == str(path)


# --- validation -----------------------------------------------------------------------------


def _spec_with(replace: str, by: str) -> str:
    assert replace in SPEC
    return SPEC.replace(replace, by)


@pytest.mark.parametrize(
    ("text", "field", "line", "fragment"),
    [
        (_spec_with("setWeight: 50", "setWeight: 150"), "canary.steps[2].setWeight", 12,
         "less than or equal to 100"),
        (_spec_with("duration: 30", "duration: -1"), "canary.steps[1].duration", 10,
         "greater than 0"),
        (_spec_with("maxSurge: 1", "maxSurg: 1"), "canary.maxSurg", 5,
         "Extra inputs are not permitted"),
        (_spec_with("duration: 30", "durashun: 30"), "canary.steps[1].duration", 9,
         "Field required (and 1 more error)"),
        (_spec_with("kind: pause", "kind: sleep"), "canary.steps[1].kind", 9,
         "does not match any of the expected tags"),
        (_spec_with("name: web\n", ""), "name", 2, "Field required"),
        (_spec_with("replicas: 4", "replicas: 0"), "replicas", 3, "greater than or equal to 1"),
        (_spec_with("maxSurge: 1", "maxSurge: 9"), "canary.maxSurge", 5,
         "maxSurge exceeds replicas"),
        (_spec_with("labels: [a, b]", "labels: [a, no]"), "labels[1]", 13,
         "reads unquoted 'no' as true/false; quote it"),
        (_spec_with("name: web", "name: web\non: 1"), "True", 3, "unquoted 'on'"),
        (_spec_with("duration: 30", "duration: .inf"), "canary.steps[1].duration", 10,
         "finite number"),
        ("- 1\n- 2\n", None, 1, "valid dictionary"),
    ],
    ids=[
        "constraint-in-third-list-item",
        "negative-duration",
        "typo-in-field-name",
        "missing-field-in-list-item-points-at-the-item",
        "unknown-union-tag-points-at-kind",
        "missing-required-field-points-at-document-start",
        "top-level-constraint",
        "cross-field-validator-points-at-subfield",
        "yaml11-boolean-gets-a-hint",
        "yaml11-boolean-key-gets-a-hint",
        "infinity-rejected",
        "wrong-top-level-type",
    ],
)
def test_validation_errors_name_field_and_line(text, field, line, fragment):
    """The first pydantic error is reported with its field path, line and message."""
    with pytest.raises(InputError) as info:
        validate_document(_doc(text), Spec)
    error = info.value
    assert (error.field, error.line) == (field, line)
    assert fragment in error.message


def test_more_errors_are_counted():
    """When several fields are wrong, the message says how many more there are."""
    text = _spec_with("replicas: 4", "replicas: 0\nbogus: 1\nother: 2")
    with pytest.raises(InputError, match=r"\(and 2 more errors\)$"):
        validate_document(_doc(text), Spec)


def test_validate_at_a_sub_path():
    """Validating a section reports paths and lines from the document root."""
    text = "kind: Rollout\nspec:\n  strategy:\n    steps:\n      - {kind: pause, duration: 0}\n"
    with pytest.raises(InputError) as info:
        validate_document(_doc(text), Canary, at=("spec", "strategy"))
    assert (info.value.field, info.value.line) == ("spec.strategy.steps[0].duration", 5)


def test_validate_at_a_missing_section():
    """A missing section named by `at` is an InputError naming it."""
    with pytest.raises(InputError, match="missing section") as info:
        validate_document(_doc("a: {}\n"), Canary, at=("a", "strategy"))
    assert info.value.field == "a.strategy"


def test_an_empty_key_is_named_as_yaml_shows_it():
    """A key left empty (``'': 1``) is reported as the field ``''``, never as no field."""
    with pytest.raises(InputError) as info:
        validate_document(_doc(SPEC.replace("replicas: 4", "'': 4")), Spec)
    assert (info.value.field, info.value.line) == ("''", 3)
    assert "Extra inputs" in info.value.message


# --- octal integers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "field", "line", "fragment"),
    [("replicas: 4", "replicas: 010", "replicas", 3, "'010' as the octal number 8: write 10 (or 8)"),
     ("setWeight: 20", "setWeight: 020", "canary.steps[0].setWeight", 8, "octal number 16: write 20"),
     ("maxSurge: 1", "maxSurge: -01", "canary.maxSurge", 5, "octal number -1: write -1"),
     ("labels: [a, b]", "labels: [a, 0755]", "labels[1]", 13, "octal number 493")],
    ids=["replicas", "in-a-list-item", "negative", "where-text-was-meant"],
)
def test_octal_integers_are_refused_where_validated(old, new, field, line, fragment):
    """An integer with a leading zero, which YAML 1.1 reads as octal, is an error at its
    field saying what YAML made of it, not a silently different number."""
    with pytest.raises(InputError) as info:
        validate_document(_doc(SPEC.replace(old, new)), Spec)
    assert (info.value.field, info.value.line) == (field, line)
    assert fragment in info.value.message


def test_octal_integers_keep_yaml_meaning_outside_what_is_validated():
    """Parsing keeps YAML's reading (a manifest's ``defaultMode: 0644`` is octal on
    purpose), and only the validated section is checked."""
    text = "defaultMode: 0644\nspec:\n  strategy:\n    maxSurge: 2\n"
    doc = _doc(text)
    assert doc.data["defaultMode"] == 0o644
    assert validate_document(doc, Canary, at=("spec", "strategy")).maxSurge == 2


# --- error text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (InputError("x.yaml", "bad", 12, "traffic.rps"), "x.yaml:12: traffic.rps: bad"),
        (InputError("x.yaml", "bad", line=3), "x.yaml:3: bad"),
        (InputError("x.yaml", "bad", field="a.b"), "x.yaml: a.b: bad"),
        (InputError("x.yaml", "bad"), "x.yaml: bad"),
    ],
    ids=["all-parts", "no-field", "no-line", "file-only"],
)
def test_input_error_text(error, text):
    """str(InputError) is `file:line: field: message`, leaving out unknown parts."""
    assert str(error) == text


def test_input_error_survives_pickling():
    """An InputError crosses process boundaries (Monte Carlo workers) intact."""
    import pickle

    error = pickle.loads(pickle.dumps(InputError("x.yaml", "bad", 2, "a")))
    assert (error.file, error.message, error.line, error.field) == ("x.yaml", "bad", 2, "a")


@pytest.mark.parametrize(
    ("path", "data", "text"),
    [
        (("canary", "steps", 2, "setWeight"), None, "canary.steps[2].setWeight"),
        (("ports", 8080), {"ports": {8080: "http"}}, "ports.8080"),
        ((0, "a"), None, "[0].a"),
        (("strategy", ""), {"strategy": {"": 1}}, "strategy.''"),
        ((None,), {None: 1}, "null"),
        (("a", " b"), None, "a.' b'"),
    ],
    ids=["list-index", "integer-mapping-key", "leading-index", "empty-key", "null-key", "key-with-a-space"],
)
def test_format_field_path(path, data, text):
    """Field paths read like the YAML they point into."""
    assert format_field_path(path, data) == text


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0), (1.5, 1.5), ("90", 90.0), ("30s", 30.0), ("5m", 300.0),
        ("1h30m", 5400.0), ("250ms", 0.25), ("1.5h", 5400.0), ("2d", 172800.0),
        ("-5m", -300.0), (" 10s ", 10.0),
    ],
    ids=[
        "int", "float", "number-string", "seconds", "minutes", "hours-and-minutes",
        "milliseconds", "fractional-hours", "days", "negative", "surrounding-space",
    ],
)
def test_parse_duration(value, seconds):
    """Durations are seconds, from numbers or unit strings whose parts add up."""
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value",
    ["", "m", "5x", "5m3", "five minutes", True, None, [1], 10**400],
    ids=["empty", "unit-only", "unknown-unit", "trailing-number", "words", "bool", "none",
         "list", "huge-int"],
)
def test_parse_duration_rejects(value):
    """Anything else is a ValueError that shows how to write a duration."""
    with pytest.raises(ValueError):
        parse_duration(value)


# --- fuzzing --------------------------------------------------------------------------------

JUNK = st.one_of(
    st.sampled_from(
        ["", "-1", "yes", "no", "~", "1.5", "1e999", ".nan", "[", "]", "{", "}", "&a",
         "*a", "!!binary x", "!!python/name:os.system", "2001-13-45", "0o17", "010",
         "1:30", "'", '"', "- x", "? x", ": x", "|", ">", "%YAML 1.1", "---", "...",
         "<<: *a", "\t", "kind: pause", "setWeight: 10", "x: &a [*a]"]
    ),
    st.text(max_size=20),
)


@st.composite
def mutated_yaml(draw, source: str) -> str:
    """A valid YAML text with one to three random line edits."""
    return draw(mutated_lines(source, JUNK, max_edits=3, max_indent=6))


def _parse_and_validate(text: str) -> None:
    try:
        for doc in parse_yaml_documents(text, "fuzz.yaml"):
            validate_document(doc, Spec)
    except InputError as error:
        assert error.file == "fuzz.yaml"
        assert error.line is None or error.line >= 1
        str(error)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_fuzz_arbitrary_text_raises_only_input_error(text):
    """Any text either parses and validates or raises InputError."""
    _parse_and_validate(text)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_yaml(SPEC))
def test_fuzz_mutated_spec_raises_only_input_error(text):
    """Damaging a valid file line by line only ever yields InputError."""
    _parse_and_validate(text)


def test_json_indented_with_tabs_parses_with_its_lines() -> None:
    """Deck's and many editors' JSON is tab-indented: YAML refuses tabs, JSON allows them."""
    from rolloutlab.strategies.yaml_input import parse_yaml_documents

    doc = parse_yaml_documents('{\n\t"name": "p",\n\t"stages": [\n\t\t{"refId": "1"}\n\t]\n}\n', "p.json")[0]
    assert doc.data == {"name": "p", "stages": [{"refId": "1"}]}
    assert doc.line_of(("stages", 0, "refId")) == 4


def test_cloudformation_short_tags_read_as_their_long_form() -> None:
    from rolloutlab.strategies.yaml_input import parse_yaml_documents

    text = ("Resources:\n  Group:\n    Type: AWS::CodeDeploy::DeploymentGroup\n    Properties:\n"
            "      DeploymentConfigName: !Ref Config\n      Name: !Sub '${AWS::StackName}-group'\n"
            "      Arn: !GetAtt Role.Arn\n      Zones: !GetAZs ''\n")
    props = parse_yaml_documents(text, "t.yaml")[0].data["Resources"]["Group"]["Properties"]
    assert props == {"DeploymentConfigName": {"Ref": "Config"}, "Name": {"Fn::Sub": "${AWS::StackName}-group"},
                     "Arn": {"Fn::GetAtt": ["Role", "Arn"]}, "Zones": {"Fn::GetAZs": ""}}
