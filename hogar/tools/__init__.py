"""Tool calling: each model family's call format (formats, regions, scan), the streamed deltas (stream), a request's
tools from OpenAI's fields to the prompt and back (plan), and the depth cap on parameters and arguments (nesting)."""
