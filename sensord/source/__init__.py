"""IQ sources: recorded files, an RTL-SDR dongle, an rtl_tcp server. See ``base``."""

from sensord.source.base import SAMPLE_FORMATS, IQBlock, IQSource

__all__ = ["SAMPLE_FORMATS", "IQBlock", "IQSource"]
