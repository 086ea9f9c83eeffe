"""The command-line interface: parse, call one core function, render."""
