"""AI providers: their interfaces (interfaces.py), one adapter module per service, the local stand-ins (local/), the
fallback chain (chain.py) and the registry that builds the chains settings name (registry.py)."""
