"""Simulated POS terminals (terminal role of ZVT and PAX POSLink) on real pseudo-terminals."""
