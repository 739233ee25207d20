"""Asyncio adapters and wiring: SMPP client, services, ingestion, admin API, CLI."""
