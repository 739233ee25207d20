"""Diameter (RFC 6733) codec and dictionary, sans-I/O: ``codec`` for the wire, ``dictionary`` for names."""
