"""Simulators of the network side: SMSC, handsets, billing/OCS, DPI/PCEF."""
