"""Terminal views: the live track table and the end-of-run summary."""
