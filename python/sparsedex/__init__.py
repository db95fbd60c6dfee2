"""sparsedex: learned sparse retrieval with a Rust core."""
