"""What an escape attempt must end with: checks of an `Outcome`, built from parts."""

from __future__ import annotations

from collections.abc import Callable

import psutil

from tests.sandbox.conftest import Escapes, Outcome

Expect = Callable[[Outcome, Escapes], None]


def capable(bit: int) -> bool:
    """Does this process (and so every host: same user, same capabilities) have the
    capability ``bit`` (<linux/capability.h>) in force?"""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("CapEff:"))
    return bool(int(line.split()[1], 16) >> bit & 1)


def raises(kind: str, *fragments: str) -> Expect:
    """The program's error is ``kind`` and its message holds every fragment ($names filled)."""

    def check(outcome: Outcome, escapes: Escapes) -> None:
        error = outcome.error
        assert error["type"] == kind, error
        for fragment in fragments:
            assert escapes.fill(fragment) in error["message"], error

    return check


def prints(*fragments: str, exactly: str | None = None) -> Expect:
    """The program ran to its end and printed every fragment (or exactly ``exactly``)."""

    def check(outcome: Outcome, escapes: Escapes) -> None:
        assert outcome.state["done"] and outcome.state["error"] is None, outcome.text[:2000]
        if exactly is not None:
            assert outcome.output == exactly
        for fragment in fragments:
            assert escapes.fill(fragment) in outcome.output, outcome.output

    return check


def host_ended(outcome: Outcome, escapes: Escapes) -> None:
    """The host died of the attempt (503 once); the session replays in a new one."""
    assert outcome.status == 503, outcome.text
    assert "host ended while answering" in outcome.body["detail"]
    escapes.assert_host_gone(outcome.pid)
    again = escapes.api.state(outcome.session_id)
    assert (again["cursor"], again["error"], again["done"]) == (0, None, False)
    assert escapes.api.store.ping(outcome.session_id)["pid"] != outcome.pid


def answer_garbled(outcome: Outcome, escapes: Escapes) -> None:
    """The program wrote into its own answer: the server takes it for a dead host (503)
    and the session goes on."""
    assert outcome.status == 503, outcome.text
    assert "host ended while answering" in outcome.body["detail"]
    again = escapes.api.state(outcome.session_id)
    assert again["error"] is None and again["edited"] is True


def one_of(*checks: Expect) -> Expect:
    def check(outcome: Outcome, escapes: Escapes) -> None:
        failures = []
        for one in checks:
            try:
                one(outcome, escapes)
                return
            except AssertionError as exc:
                failures.append(str(exc))
        raise AssertionError(" / ".join(failures))

    return check


def both(*checks: Expect) -> Expect:
    def check(outcome: Outcome, escapes: Escapes) -> None:
        for one in checks:
            one(outcome, escapes)

    return check


def output_bounded(outcome: Outcome, escapes: Escapes) -> None:
    output = outcome.output
    head, _, kept = output.partition("\n")
    assert head.startswith("[") and head.endswith(" earlier characters not kept]"), head
    assert len(kept) == 16_384 and kept.endswith("y\n")
    assert len(outcome.text) < 32_768  # the whole answer stays small


def message_cut(outcome: Outcome, escapes: Escapes) -> None:
    assert outcome.error["type"] == "ValueError"
    assert outcome.error["message"] == "x" * 4000
    assert len(outcome.text) < 32_768


def host_threads_bounded(outcome: Outcome, escapes: Escapes) -> None:
    # The threads it did start sleep in its own host, which lives on; few fit in its
    # address space (RLIMIT_AS: each thread's stack is mapped there).
    host = psutil.Process(escapes.api.store.ping(outcome.session_id)["pid"])
    assert host.pid == outcome.pid and host.num_threads() < 200


def host_alive(outcome: Outcome, escapes: Escapes) -> None:
    assert escapes.api.store.ping(outcome.session_id)["pid"] == outcome.pid


def state_small(outcome: Outcome, escapes: Escapes) -> None:
    assert len(outcome.text) < 1 << 20, f"a State of {len(outcome.text)} bytes"


def descriptors(outcome: Outcome, escapes: Escapes) -> None:
    """0, 1 and 2 are /dev/null; the rest are the host's sockets: no file, pipe or folder."""
    assert outcome.state["done"] and outcome.state["error"] is None, outcome.text[:2000]
    kinds = dict(line.split() for line in outcome.output.splitlines())
    assert kinds["0"] == kinds["1"] == kinds["2"] == "chr", kinds  # /dev/null
    assert set(kinds.values()) <= {"chr", "sock"}, kinds  # no file, no pipe, no folder
    assert list(kinds.values()).count("chr") == 3, kinds


def every_line_ends(ending: str, *, at_least: int) -> Expect:
    """The program ran to its end and printed ``at_least`` lines, each ending ``ending``."""

    def check(outcome: Outcome, escapes: Escapes) -> None:
        assert outcome.state["done"] and outcome.state["error"] is None, outcome.text[:2000]
        lines = outcome.output.splitlines()
        assert len(lines) >= at_least, outcome.output
        assert all(line.endswith(ending) for line in lines), outcome.output

    return check


def no_settings(outcome: Outcome, escapes: Escapes) -> None:
    assert "AGX_" not in outcome.output, outcome.output  # no setting, no AGX_SECRET_FOR_TEST


def refused_as_untrusted(outcome: Outcome, escapes: Escapes) -> None:
    """A clear refusal of an untrusted answer (the host ended, or the program's 422)."""
    assert outcome.status in (422, 503), f"{outcome.status}: {outcome.text[:500]}"
