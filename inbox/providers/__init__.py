"""Wire formats -> domain commands: one module per provider, nothing past here is pydantic."""
