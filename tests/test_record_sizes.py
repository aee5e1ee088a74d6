"""benchmarks.record_sizes --by-module: what each embedded module costs in the compressed script."""

import random

from benchmarks.record_sizes import marginal_bytes


def _random_module(seed: int) -> str:
    rng = random.Random(seed)
    return f"TABLE = tuple({[rng.randrange(10**6) for _ in range(600)]!r})\n"  # a call: code that runs, kept


def test_a_module_is_priced_by_what_leaving_it_out_saves():
    twin = _random_module(0)
    rows = marginal_bytes({"golf.a": twin, "golf.b": twin, "golf.c": _random_module(1)})
    priced = {name: added for name, added, _ in rows}
    assert rows[0][0] == "golf.c" and priced["golf.c"] > 1500  # its text is nowhere else: it costs its own size
    assert priced["golf.a"] < 60 and priced["golf.b"] < 60  # each repeats the other: lzma stores it once
    assert {name: chars for name, _, chars in rows}["golf.a"] == len(twin.rstrip("\n"))
