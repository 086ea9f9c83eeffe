"""The command-line interface: parse, call one core function, render.

`main.main` is the entry point of `dot` and `datum`; `parser.build_parser` is the whole command
line; `*args.py` modules declare a command group's arguments and load its module (`builds`,
`schedule`, `webhook`, ...) only when it runs, so `dot --help` imports nothing heavy. `render`
and the `*view` modules draw with rich.

May import every other package; nothing imports this one (an import contract).
"""
