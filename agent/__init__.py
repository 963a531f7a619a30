"""The settleguard agent: thin I/O around :mod:`protocol` beside each POS terminal."""
