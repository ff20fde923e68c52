"""Passive bistatic radar: two coherent channels (reference, surveillance) -> detections.

``source`` reads CPIs of two-channel IQ (files, two RTL-SDRs on a shared clock, a
KrakenSDR DAQ), ``align`` finds the skew between the channels and checks they are
coherent, ``clutter`` cancels the direct path and static multipath (ECA), ``caf`` forms
the range-Doppler map (batched cross-ambiguity function), ``cfar`` detects and refines
peaks, ``processor`` ties the stages for one CPI and ``detections`` is the output record.
``geometry`` holds the bistatic geometry shared with the simulator and the tracker.
"""
