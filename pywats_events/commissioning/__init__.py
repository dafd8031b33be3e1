"""Commissioning: the commands an integration engineer uses on a line's first day, before (or beside) a
running service: check a configuration (``check``), try an MQTT topic against the mapping rules
(``mqtt_trial``), and send a test message to a configured transport (``publish``)."""
