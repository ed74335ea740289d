"""Getting models: pull from the Hugging Face Hub, the library of pulled models."""
