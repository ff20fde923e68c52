"""The air picture in a browser: an HTTP/WebSocket server on the event loop (``server``),
fed as a ``Sink`` (``sink``) from the track stream, with watched zones (``zones``)."""
