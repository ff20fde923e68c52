"""The daemon: the asyncio pipeline behind ``sensord run`` and its systemd integration."""
