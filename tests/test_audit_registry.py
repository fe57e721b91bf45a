"""The audit-signal registry and the one settings dataclass (issue 12, audit part)."""

import argparse
import dataclasses

import pytest

from modelcollapse.audit import RULES, AuditSettings
from modelcollapse.audit.signals import SIGNALS, Context, compute, signal
from modelcollapse.audit.result import Signal
from modelcollapse.audit.settings import add_arguments, from_arguments
from modelcollapse.audit.verdicts import Rule
from modelcollapse.errors import UserError


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_every_signal_has_rule_definition_order(name):
    spec = SIGNALS[name]
    assert RULES[name] is spec.rule
    assert spec.definition.strip().endswith(".")
    assert spec.rule.watch < spec.rule.alert


def test_unregistered_signal_cannot_be_built():
    with pytest.raises(KeyError):
        Signal("no_such_signal", 0.1, 0, 0.2, 10, "documents", "d", "m", 0.0)


def test_new_signal_is_one_function_and_lands_in_order():
    from modelcollapse.audit import signals as registry
    saved_signals, saved_functions = dict(SIGNALS), list(registry.FUNCTIONS)
    try:
        @signal("toy_rate", rule=Rule("higher", 0.05, 0.2, "absolute", "0"),
                definition="A toy rate.", order=15)
        def toy(ctx):
            return Signal("toy_rate", 0.5, 0.4, 0.6, 10, "documents", "A toy rate.", "none", 0.0)
        # keep only the toy function so no real data is needed
        registry.FUNCTIONS[:] = [f for f in registry.FUNCTIONS if f[1] == ("toy_rate",)]
        ctx = Context("c", None, None, None, None, None, None, [])
        out = compute(ctx)
        assert list(out) == ["toy_rate"] and out["toy_rate"].verdict == "alert"
    finally:
        SIGNALS.clear(); SIGNALS.update(saved_signals)
        registry.FUNCTIONS[:] = saved_functions
        RULES.pop("toy_rate", None)


def test_settings_feed_cli_and_api_alike():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--n-boot", "50", "--target-fpr", "0.05", "--embed"])
    s = from_arguments(args)
    assert s == AuditSettings(n_boot=50, target_fpr=0.05, embed=True)
    flags = {a.dest for a in parser._actions}
    for f in dataclasses.fields(AuditSettings):
        assert (f.name in flags) == f.metadata["cli"], f.name
    assert s.as_record()["n_boot"] == 50


@pytest.mark.parametrize("bad", [{"n_boot": 3}, {"target_fpr": 2.0}, {"seed": -1},
                                 {"observer": "a"}, {"device": "tpu"}, {"text_field": 3}])
def test_bad_settings_one_sentence(bad):
    with pytest.raises(UserError):
        AuditSettings(**bad)
