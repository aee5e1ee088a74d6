"""Test-time training at evaluation time: score-first protocols, their legality ledger and per-layer scales."""
