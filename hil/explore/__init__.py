"""Exploration: hypothesis searches the bench's state space and protocols, with the safety
invariants as the oracle, and hands back plans that reproduce what it finds."""
