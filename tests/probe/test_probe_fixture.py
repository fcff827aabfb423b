"""The `probe` fixture refuses to explore when it cannot tell which code to switch in."""

from __future__ import annotations

from tests.kata_repo import KataRepo

WORKERS_ON_A_PLAIN_COUNTER = """
class Counter:
    def __init__(self):
        self.v = 0

    def increment(self):
        self.v += 1


def test_two_increments_both_count(probe):
    def both_counted(counter, _results):
        assert counter.v == 2, f"count is {counter.v}"

    probe.explore(Counter, [lambda c: c.increment(), lambda c: c.increment()], both_counted)
"""


def test_a_probe_outside_katas_fails_instead_of_passing_untested(kata_repo: KataRepo) -> None:
    # This lost update passed all 250 schedules before: no module was traced, so the
    # scheduler never had a switch point inside `increment`.
    kata_repo.write("elsewhere/test_counter.py", WORKERS_ON_A_PLAIN_COUNTER)
    result = kata_repo.run("elsewhere/test_counter.py")
    result.assert_outcomes(errors=1)
    output = " ".join(result.stdout.str().split())  # the reason is one long, wrapped line
    assert "the probe fixture found no kata for elsewhere/test_counter.py" in output, output
    assert "explore(..., modules=[the module])" in output, output


def test_a_probe_whose_workers_never_run_the_kata_code_fails_instead_of_passing(
    kata_repo: KataRepo,
) -> None:
    # Whether or not the kata module is imported, the workers here run only the test's own
    # Counter: no switch point, no interleaving, nothing tested.
    kata_repo.write("katas/adder/test_probe_adder.py", WORKERS_ON_A_PLAIN_COUNTER)
    result = kata_repo.run("katas/adder/test_probe_adder.py", "--kata-impl=reference")
    assert result.ret != 0, result.stdout.str()
    output = " ".join(result.stdout.str().split())
    assert (
        "found no imported module 'adder' for kata adder" in output
        or "never reached a switch point in adder" in output
    ), output


ADDER_UNDER_PROBE = """
from adder import add


class Sums:
    def __init__(self):
        self.got = []


def add_into(sums, a, b):
    sums.got.append(add(a, b))  # one append each: nothing shared is read before the call


def test_two_adds_in_turn(probe):
    def both_done(sums, _results):
        assert sorted(sums.got) == [2, 5], f"got {sums.got}"

    probe.explore(Sums, [lambda s: add_into(s, 3, 2), lambda s: add_into(s, 1, 1)], both_done)
"""


def test_the_summary_says_how_many_explorations_were_proved_and_how_many_sampled(
    kata_repo: KataRepo,
) -> None:
    kata_repo.write("katas/adder/test_probe_adder.py", ADDER_UNDER_PROBE)
    result = kata_repo.run("katas/adder/test_probe_adder.py", "--kata-impl=reference")
    output = " ".join(result.stdout.str().split())
    assert "probe: 1 explorations passed: 1 proved (every distinct interleaving checked)" in (
        output
    ), output
