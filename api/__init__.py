"""FastAPI management plane: REST, health, metrics, console."""
