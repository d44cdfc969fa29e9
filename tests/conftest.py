"""Test-suite settings shared by every test module."""

# Scenario files under fixtures/ fail on purpose: the rolloutlab pytest plugin would
# collect them as tests. The tests that need them run them explicitly.
collect_ignore = ["fixtures"]

pytest_plugins = ["pytester"]
