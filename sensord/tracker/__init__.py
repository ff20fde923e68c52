"""Multi-target tracker: detections in, track updates out (see ``update.TrackUpdate``)."""
