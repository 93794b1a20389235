"""What the routers call: the product's rules over Postgres, the object store and Temporal."""
