"""Rhea's networks: shared outputs, the transfer and equivariant architectures, flavor groups."""
