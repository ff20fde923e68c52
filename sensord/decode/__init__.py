"""The decode stage: frames (``sensord.frames``) in, detections (``sensord.detections``) out."""

from sensord.decode.detector import Detector, DetectorStats
from sensord.decode.positions import PositionResolver

__all__ = ["Detector", "DetectorStats", "PositionResolver"]
