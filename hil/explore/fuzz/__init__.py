"""Protocol fuzzing: hypothesis strategies derived from each device's definition (its DBC,
its MIoT spec, its SCPI vocabulary), sent through the bench's real transport, with a
liveness probe, the protocol's error rules and the safety envelope as the oracle."""
