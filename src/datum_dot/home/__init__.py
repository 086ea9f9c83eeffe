"""The user's state in `$DATUM_HOME`, and what it says about a registered project."""
