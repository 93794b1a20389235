"""Entry points for people: the `smol` CLI, the embedded stack (`make run`), the doctor and the mint client."""
