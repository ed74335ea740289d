"""Chat with your documents: ingest (parsers), chunking, store (SQLite + sqlite-vec + FTS5), retrieval, answers with
sources. `DocLibrary` (library.py) is the one entry point the CLI and the server use."""
