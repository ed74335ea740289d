"""`hogar serve`: an OpenAI-compatible HTTP server (app.py) over a scheduler that decodes many requests in one batched
forward pass per step (scheduler.py)."""
