"""flagd flag files: loading with precise errors, and exposures rendered into flagd's format,
evaluated by the real OpenFeature SDK with the real flagd provider (in-process, file mode)."""

from __future__ import annotations

import json
import logging
import re
import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import Reason
from scipy import stats

from rolloutlab.errors import FieldError, InputError
from rolloutlab.live.flag_file import FlagFileWriter
from rolloutlab.strategies.actions import SetFlagExposure
from rolloutlab.strategies.files import load_strategy
from rolloutlab.strategies.flagd import check_flag, load_flag_file, render_flags
from rolloutlab.strategies.routes import HeaderMatch

FLAGS = {
    "$schema": "https://flagd.dev/schema/v0/flags.json",
    "flags": {
        "new-checkout": {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"},
        "banner-color": {"state": "ENABLED", "variants": {"red": "#f00", "blue": "#00f"}, "defaultVariant": "red",
                         "targeting": {"if": [{"==": [{"var": "plan"}, "pro"]}, "blue", None]}},
    },
}
KEY = "new-checkout"
USERS = [f"user-{i}" for i in range(4000)]
INTERNAL = HeaderMatch.model_validate({"headerName": "X-User-Group", "headerValue": {"exact": "internal"}})
CANARY_COOKIE = HeaderMatch.model_validate({"headerName": "cookie", "headerValue": {"prefix": "canary=always"}})


@contextmanager
def flagd_client(tmp_path: Path, content: dict) -> Iterator:
    """An OpenFeature client on the flagd provider in file mode, reading ``content`` from a file."""
    path = tmp_path / f"flags-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(content))
    api.set_provider_and_wait(FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=str(path)))
    try:
        yield api.get_client()
    finally:
        api.shutdown()


def variants(client, users, headers: dict | None = None) -> dict[str | None, str]:
    """The variant the provider answers each user (None: a request without a user id)."""
    out = {}
    for user in users:
        context = EvaluationContext(targeting_key=user, attributes=headers or {})
        details = client.get_boolean_details(KEY, False, context)
        assert details.error_code is None, details
        out[user] = details.variant
    return out


def binomial_bounds(n: int, p: float, confidence: float = 0.999) -> tuple[float, float]:
    return stats.binom.interval(confidence, n, p)


# ----------------------------------------------------------------------- rendering, through the provider


@pytest.mark.parametrize("percentage", [1, 10, 50, 90])
def test_the_share_of_users_with_the_flag_on_is_the_percentage(tmp_path, percentage):
    """Of 4000 users, the number the provider turns on is inside the 99.9% binomial interval of the percentage."""
    with flagd_client(tmp_path, render_flags(FLAGS, KEY, percentage, (), "on", "off")) as client:
        answers = variants(client, USERS)
    on = sum(v == "on" for v in answers.values())
    low, high = binomial_bounds(len(USERS), percentage / 100)
    assert low <= on <= high, (on, low, high)
    assert set(answers.values()) == {"on", "off"}


def test_a_user_keeps_the_flag_when_the_percentage_grows(tmp_path):
    """Every user on at 10% is on at 50% (flagd's fractional is sticky per user), and stays on when asked again."""
    with flagd_client(tmp_path, render_flags(FLAGS, KEY, 10, (), "on", "off")) as client:
        at_10 = variants(client, USERS)
        assert variants(client, USERS) == at_10
    with flagd_client(tmp_path, render_flags(FLAGS, KEY, 50, (), "on", "off")) as client:
        at_50 = variants(client, USERS)
    on_10 = {u for u, v in at_10.items() if v == "on"}
    on_50 = {u for u, v in at_50.items() if v == "on"}
    assert on_10 and on_10 <= on_50 and len(on_50) > 3 * len(on_10)


def test_a_cohort_gets_the_flag_whatever_the_percentage(tmp_path):
    """Users whose header matches (exact or prefix) get the flag on at 0%; the others stay off."""
    content = render_flags(FLAGS, KEY, 0, (INTERNAL, CANARY_COOKIE), "on", "off")
    some = USERS[:300]
    with flagd_client(tmp_path, content) as client:
        assert set(variants(client, some, {"x-user-group": "internal"}).values()) == {"on"}
        assert set(variants(client, some, {"cookie": "canary=always; theme=dark"}).values()) == {"on"}
        assert set(variants(client, some, {"x-user-group": "internal-ish"}).values()) == {"off"}
        assert set(variants(client, some, {"cookie": "theme=dark; canary=always"}).values()) == {"off"}
        assert set(variants(client, some).values()) == {"off"}


def test_a_cohort_and_a_percentage_add_up(tmp_path):
    """At 10% with a cohort, every cohort user is on and the others are on in about 10%."""
    with flagd_client(tmp_path, render_flags(FLAGS, KEY, 10, (INTERNAL,), "on", "off")) as client:
        cohort = variants(client, USERS[:500], {"x-user-group": "internal"})
        others = variants(client, USERS, {"x-user-group": "external"})
    assert set(cohort.values()) == {"on"}
    low, high = binomial_bounds(len(USERS), 0.10)
    assert low <= sum(v == "on" for v in others.values()) <= high


@pytest.mark.parametrize("percentage, answer", [(0, "off"), (100, "on")], ids=["off for everyone", "on for everyone"])
def test_none_and_all_need_no_targeting(tmp_path, percentage, answer):
    """0% without a cohort answers off to everyone, 100% on to everyone, users without an id included."""
    content = render_flags(FLAGS, KEY, percentage, (), "on", "off")
    assert "targeting" not in content["flags"][KEY] and content["flags"][KEY]["defaultVariant"] == answer
    with flagd_client(tmp_path, content) as client:
        assert set(variants(client, USERS[:500] + [None]).values()) == {answer}


def test_a_request_without_a_user_id_is_off_and_logs_nothing(tmp_path, caplog):
    """No targetingKey at 50%: the off variant by the rule itself, not a provider error (which it would log)."""
    with caplog.at_level(logging.DEBUG, logger="openfeature"):
        with flagd_client(tmp_path, render_flags(FLAGS, KEY, 50, (INTERNAL,), "on", "off")) as client:
            details = client.get_boolean_details(KEY, False, EvaluationContext(attributes={}))
            staff = EvaluationContext(attributes={"x-user-group": "internal"})
            internal = client.get_boolean_details(KEY, False, staff)
    assert (details.variant, details.reason) == ("off", Reason.TARGETING_MATCH)
    assert internal.variant == "on"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_rendering_touches_only_the_flag_it_is_asked_to(tmp_path):
    """The other flags stay as written, the input is not changed, and the other flag still evaluates."""
    before = json.loads(json.dumps(FLAGS))
    content = render_flags(FLAGS, KEY, 30, (INTERNAL,), "on", "off")
    assert FLAGS == before
    assert content["flags"]["banner-color"] == FLAGS["flags"]["banner-color"]
    assert content["$schema"] == FLAGS["$schema"]
    with flagd_client(tmp_path, content) as client:
        pro = client.get_string_details("banner-color", "none", EvaluationContext("u1", {"plan": "pro"}))
    assert pro.variant == "blue"


def test_a_rendered_file_loads_as_a_flag_file(tmp_path):
    """What render_flags writes is a flag file load_flag_file accepts (the loader and renderer agree)."""
    path = tmp_path / "rendered.json"
    path.write_text(json.dumps(render_flags(FLAGS, KEY, 25, (INTERNAL, CANARY_COOKIE), "on", "off")))
    assert load_flag_file(path)["flags"][KEY]["targeting"]["if"][-1] == "off"


@pytest.mark.parametrize(
    "flag_key, on, off, path, fragment",
    [
        ("old-checkout", "on", "off", ("flags",), "no flag 'old-checkout'"),
        (KEY, "enabled", "off", ("flags", KEY, "variants"), "onVariant 'enabled'"),
        (KEY, "on", "disabled", ("flags", KEY, "variants"), "offVariant 'disabled'"),
        (KEY, "on", "on", ("flags", KEY, "variants"), "both 'on'"),
    ],
    ids=["unknown flag", "unknown on variant", "unknown off variant", "on is off"],
)
def test_check_flag_names_the_field_in_the_flag_file(flag_key, on, off, path, fragment):
    """A flag the strategy cannot turn on and off is a FieldError at its place in the flag file."""
    with pytest.raises(FieldError) as caught:
        check_flag(FLAGS, flag_key, on, off)
    assert caught.value.path == path and fragment in caught.value.message


def test_check_flag_refuses_a_disabled_flag_and_takes_the_default_as_off():
    """DISABLED is refused (flagd answers the code default); off_variant None is the defaultVariant."""
    assert check_flag(FLAGS, KEY, "on", None) == "off"
    disabled = json.loads(json.dumps(FLAGS))
    disabled["flags"][KEY]["state"] = "DISABLED"
    with pytest.raises(FieldError) as caught:
        check_flag(disabled, KEY, "on", None)
    assert caught.value.path == ("flags", KEY, "state")


def test_a_header_with_a_dot_is_refused():
    """JSON Logic reads "a.b" as a path: such a header cannot be matched, and the renderer says so."""
    dotted = HeaderMatch.model_validate({"headerName": "x.group", "headerValue": {"exact": "a"}})
    with pytest.raises(ValueError, match="dot"):
        render_flags(FLAGS, KEY, 10, (dotted,), "on", "off")


# ----------------------------------------------------------------------- reading flag files

GOOD_JSON = """\
{
  "flags": {
    "new-checkout": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off"
    }
  }
}
"""


BAD_FILES = [
    ("broken.json", GOOD_JSON.replace('"off"\n', '"off",\n'), 7, None, "not valid JSON"),
    ("broken.yaml", "flags:\n  new-checkout:\n    state: ENABLED\n   variants: [\n", 4, None, "YAML"),
    ("no-flags.json", '{\n  "flag": {}\n}\n', 1, "flags", "required"),
    ("empty.json", "{}\n", 1, "flags", "required"),
    ("not-object.json", "[1, 2]\n", 1, None, "object"),
    ("default.json", GOOD_JSON.replace('"defaultVariant": "off"', '"defaultVariant": "none"'), 6,
     "flags.new-checkout.defaultVariant", "not one of the variants"),
    ("state.json", GOOD_JSON.replace("ENABLED", "enabled"), 4, "flags.new-checkout.state", "ENABLED or DISABLED"),
    ("no-variants.json", GOOD_JSON.replace('{"on": true, "off": false}', "{}"), 5,
     "flags.new-checkout.variants", "at least 1"),
    ("mixed.json", GOOD_JSON.replace('"off": false', '"off": "no"'), 5,
     "flags.new-checkout.variants.off", "all booleans"),
    ("unknown-key.json", GOOD_JSON.replace('"state"', '"enabled": true,\n      "state"'), 4,
     "flags.new-checkout.enabled", "Extra inputs"),
    ("duplicate.json", GOOD_JSON.replace('"state": "ENABLED",', '"state": "ENABLED",\n      "state": "ENABLED",'),
     5, None, "duplicate key 'state'"),
    ("tabs.json", GOOD_JSON.replace("  ", "\t").replace("ENABLED", "ON"), 4, "flags.new-checkout.state", "ENABLED"),
    ("ref.json", GOOD_JSON.replace('"defaultVariant": "off"', '"defaultVariant": "off",\n'
                                   '      "targeting": {"if": [{"$ref": "staff"}, "on", null]}'),
     7, "flags.new-checkout.targeting.if[0].$ref", "no evaluator 'staff'"),
    ("unquoted.yaml", "flags:\n  new-checkout:\n    state: ENABLED\n    variants:\n      on: true\n"
                      "      off: false\n    defaultVariant: 'off'\n", 5, "flags.new-checkout.variants.True",
     "quote it"),
    ("metadata.yaml", "flags:\n  f:\n    state: ENABLED\n    variants: {a: 1}\n    defaultVariant: a\n"
                      "    metadata:\n      owner: [team-a]\n", 7, "flags.f.metadata.owner", "string"),
]


@pytest.mark.parametrize("name, text, line, field, fragment", BAD_FILES, ids=[row[0] for row in BAD_FILES])
def test_a_bad_flag_file_names_its_line_and_field(tmp_path, name, text, line, field, fragment):
    """Every mistake flagd would refuse is an InputError naming the file, the line and the field."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_flag_file(path)
    error = caught.value
    assert (error.file, error.line, error.field) == (str(path), line, field), str(error)
    assert fragment in error.message, str(error)


def test_json_and_yaml_flag_files_load_the_same(tmp_path):
    """The same flags written as JSON and as YAML load equal, $schema, $evaluators and metadata included."""
    content = {
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "$evaluators": {"staff": {"==": [{"var": "x-user-group"}, "internal"]}},
        "metadata": {"flagSetId": "shop", "version": "3"},
        "flags": {KEY: {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off",
                        "targeting": {"if": [{"$ref": "staff"}, "on", None]}, "metadata": {"owner": "team-a"}}},
    }
    (tmp_path / "f.json").write_text(json.dumps(content, indent=2))
    (tmp_path / "f.yaml").write_text(textwrap.dedent("""\
        $schema: https://flagd.dev/schema/v0/flags.json
        $evaluators:
          staff: {"==": [{var: x-user-group}, internal]}
        metadata: {flagSetId: shop, version: "3"}
        flags:
          new-checkout:
            state: ENABLED
            variants: {"on": true, "off": false}
            defaultVariant: "off"
            targeting: {if: [{$ref: staff}, "on", null]}
            metadata: {owner: team-a}
        """))
    assert load_flag_file(tmp_path / "f.json") == load_flag_file(tmp_path / "f.yaml") == content
    with flagd_client(tmp_path, content) as client:  # and the provider reads it as we do
        staff = client.get_boolean_details(KEY, False, EvaluationContext("u", {"x-user-group": "internal"}))
    assert staff.variant == "on"


# ----------------------------------------------------------------------- strategy files


STRATEGY = """\
name: flagged
strategy:
  featureFlag:
    flagKey: new-checkout
    flagFile: {flag_file}
    steps:
      - setExposure: {{percentage: 10}}
      - pause: {{duration: 1m}}
      - setExposure:
          percentage: 50
          match: [{{headerName: {header}, headerValue: {{exact: internal}}}}]
"""


def write_strategy(tmp_path: Path, flag_file: str = "flags/checkout.json", header: str = "x-user-group") -> Path:
    path = tmp_path / "strategy.yaml"
    path.write_text(STRATEGY.format(flag_file=flag_file, header=header))
    return path


def test_a_strategy_reads_its_flag_file_beside_it(tmp_path, monkeypatch):
    """flagFile is read relative to the strategy file (not the working directory) into spec.flags."""
    (tmp_path / "flags").mkdir()
    (tmp_path / "flags" / "checkout.json").write_text(json.dumps(FLAGS))
    monkeypatch.chdir(Path("/"))
    spec = load_strategy(write_strategy(tmp_path))
    assert spec.strategy.feature_flag.flags == FLAGS


def test_a_missing_flag_file_is_named_in_the_strategy_file(tmp_path):
    """The error points at the strategy file's flagFile line."""
    path = write_strategy(tmp_path, flag_file="nowhere.json")
    with pytest.raises(InputError) as caught:
        load_strategy(path)
    assert (caught.value.file, caught.value.line, caught.value.field) == (str(path), 5, "strategy.featureFlag.flagFile")


def test_a_flag_the_strategy_cannot_use_is_named_in_the_flag_file(tmp_path):
    """A disabled flag: the error names the flag file, the line of its state and the field."""
    disabled = json.loads(json.dumps(FLAGS))
    disabled["flags"][KEY]["state"] = "DISABLED"
    (tmp_path / "flags").mkdir()
    flag_path = tmp_path / "flags" / "checkout.json"
    flag_path.write_text(json.dumps(disabled, indent=2))
    with pytest.raises(InputError) as caught:
        load_strategy(write_strategy(tmp_path))
    assert (caught.value.file, caught.value.line, caught.value.field) == (
        str(flag_path), 5, "flags.new-checkout.state")


INLINE = """\
name: flagged
strategy:
  featureFlag:
    flagKey: new-checkout
    offVariant: {off}
    flags:
      flags:
        new-checkout:
          state: ENABLED
          variants: {{"on": true, "off": false}}
          defaultVariant: {default}
    steps:
      - setExposure: {{percentage: 10}}
"""


@pytest.mark.parametrize(
    "off, default, line, field, fragment",
    [
        ('"off"', '"maybe"', 11, "strategy.featureFlag.flags.flags.new-checkout.defaultVariant", "not one of"),
        ('"gone"', '"off"', 10, "strategy.featureFlag.flags.flags.new-checkout.variants", "offVariant 'gone'"),
    ],
    ids=["bad defaultVariant", "unknown offVariant"],
)
def test_inline_flags_are_checked_in_the_strategy_file(tmp_path, off, default, line, field, fragment):
    """Inline flags get the same checks, with the strategy file's lines."""
    path = tmp_path / "inline.yaml"
    path.write_text(INLINE.format(off=off, default=default))
    with pytest.raises(InputError) as caught:
        load_strategy(path)
    assert (caught.value.file, caught.value.line, caught.value.field) == (str(path), line, field), str(caught.value)
    assert fragment in caught.value.message


def test_inline_flags_load(tmp_path):
    """Inline flags that flagd accepts come back as written."""
    path = tmp_path / "inline.yaml"
    path.write_text(INLINE.format(off='"off"', default='"off"'))
    flags = load_strategy(path).strategy.feature_flag.flags
    assert flags["flags"][KEY]["variants"] == {"on": True, "off": False}


def test_a_step_matching_a_header_with_a_dot_is_refused_at_its_line(tmp_path):
    """A step matching a header flagd targeting cannot name is refused at the step's line, at load time."""
    (tmp_path / "flags").mkdir()
    (tmp_path / "flags" / "checkout.json").write_text(json.dumps(FLAGS))
    path = write_strategy(tmp_path, header="x.group")
    with pytest.raises(InputError) as caught:
        load_strategy(path)
    field = "strategy.featureFlag.steps[2].setExposure.match[0].headerName"
    assert (caught.value.file, caught.value.line, caught.value.field) == (str(path), 11, field)


# ----------------------------------------------------------------------- the writer


def test_the_writer_replaces_the_file_and_records_each_write(tmp_path):
    """Each apply replaces the file whole with the rendered exposure and records when."""
    path = tmp_path / "live-flags.json"
    writer = FlagFileWriter(path, FLAGS, KEY)
    assert writer.off_variant == "off" and writer.last is None and not path.exists()
    first = writer.apply(SetFlagExposure(KEY, 0))
    assert load_flag_file(path) == render_flags(FLAGS, KEY, 0, (), "on", "off")
    second = writer.apply(SetFlagExposure(KEY, 40, (INTERNAL,)))
    assert load_flag_file(path) == render_flags(FLAGS, KEY, 40, (INTERNAL,), "on", "off")
    assert writer.writes == [first, second] and first.at <= second.at and second.percentage == 40
    assert [p.name for p in tmp_path.iterdir()] == ["live-flags.json"]  # no temporary file left behind
    with pytest.raises(ValueError, match="banner-color"):
        writer.apply(SetFlagExposure("banner-color", 10))


def test_the_examples_of_the_feature_flag_page_load(tmp_path):
    """docs/feature-flags.md's flag file and strategy are what load_strategy accepts."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "feature-flags.md").read_text()
    flag_file, strategy = re.findall(r"```(?:json|yaml)\n(.*?)```", page, re.DOTALL)[:2]
    (tmp_path / "flags").mkdir()
    (tmp_path / "flags" / "checkout.json").write_text(flag_file)
    (tmp_path / "strategy.yaml").write_text(strategy)
    flagged = load_strategy(tmp_path / "strategy.yaml").strategy.feature_flag
    assert flagged.flag_key in flagged.flags["flags"] and flagged.steps


def test_lint_checks_a_feature_flags_flag_file(tmp_path):
    """`rolloutlab lint` on a featureFlag strategy reads its flagd file as a run would: a
    flag file that is not flagd's format exits 2 naming the flag file, line and field."""
    import subprocess
    import sys

    (tmp_path / "flags.json").write_text(
        '{"flags": {"f": {"state": "ON", "variants": {"on": true, "off": false}, "defaultVariant": "off"}}}\n')
    (tmp_path / "ff.yaml").write_text(
        "name: ff\nstrategy:\n  featureFlag:\n    flagKey: f\n    flagFile: flags.json\n"
        "    steps:\n      - setExposure: {percentage: 5}\n")
    done = subprocess.run([sys.executable, "-m", "rolloutlab.cli", "lint", str(tmp_path / "ff.yaml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "flags.json:1: flags.f.state: state must be ENABLED or DISABLED" in done.stdout + done.stderr
