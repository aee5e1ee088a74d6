"""The artifact's bytes: file container, official int8 layout, packed intn layout, compressors."""
