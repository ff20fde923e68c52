"""IQ simulator with ground truth: scenarios of aircraft -> Mode S replies -> cu8 recordings."""

from sensord.sim.recording import (
    TRUTH_DTYPE,
    Channel,
    SimResult,
    Truth,
    load_truth,
    record,
    simulate,
    write_recording,
)
from sensord.sim.scenario import Aircraft, Leg, PositionFault, Scenario, State, random_scenario

__all__ = [
    "TRUTH_DTYPE",
    "Aircraft",
    "Channel",
    "Leg",
    "PositionFault",
    "Scenario",
    "SimResult",
    "State",
    "Truth",
    "load_truth",
    "random_scenario",
    "record",
    "simulate",
    "write_recording",
]
