"""What a run is, and how it is planned and carried out through a runtime."""
