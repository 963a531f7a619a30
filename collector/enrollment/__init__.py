"""Agents joining and leaving: one-time tokens, enrollment, approval, revocation and key rotation
(:mod:`.service`), the collector's own keys (:mod:`.keys`) and the broker's configuration and
password file (:mod:`.broker`)."""
