"""Pure codecs and protocol state machines (sans-I/O): no asyncio, no sockets, no clocks."""
