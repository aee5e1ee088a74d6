"""The curated mutants of the mutation check (tests/mutation/) still match the code they mutate: when code moves,
this fails and names the entries to update, so the on-demand check never silently tests nothing."""

from pathlib import Path

from mutation.mutants import MUTANTS
from mutation.run import REPO, stale


def test_every_mutant_applies_to_the_code_and_compiles():
    assert stale(MUTANTS, REPO) == []


def test_every_mutant_names_existing_tests():
    files = {t.split("::")[0] for m in MUTANTS for t in m.tests}
    assert sorted(f for f in files if not (REPO / f).is_file()) == []
    assert all(Path(m.path).parts[0] == "golf" for m in MUTANTS)
