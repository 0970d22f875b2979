"""Live sensor data: the SQLite store, MQTT ingestion, CSV import, the simulator and the tools.

    feeds (MQTT subscriber, CSV import, simulator) ─► store (SQLite WAL) ◄─ sensor tools

Import from the submodules (``tools.sensors.store``, ``.mqtt``, ``.csv_import``, ``.simulator``,
``.tools``); importing this package loads none of them, so paho-mqtt is only imported by code
that talks MQTT.
"""
