"""Intermud-3 gateway: a MudMode router link with a JSON-RPC 2.0 API for MUDs."""

__version__ = "0.1.0"
