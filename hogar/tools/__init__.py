"""Tool calling: each model family's call format (formats, regions, scan), the streamed deltas (stream) and a
request's tools from OpenAI's fields to the prompt and back (plan)."""
