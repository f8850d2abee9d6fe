"""Safety: the safe-state interlock (and, in time, the invariant engine)."""
