"""The project's dot configuration: environments, variables and isolation settings."""
