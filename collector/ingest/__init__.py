"""Records in from the agents: the MQTT link (:mod:`.mqtt_codec` and :mod:`.mqtt_link`), the
verification and idempotent storage of each envelope (:mod:`.verify`), the worker processes
that join them (:mod:`.worker`) and offline bundles through the same path (:mod:`.bundles`)."""
