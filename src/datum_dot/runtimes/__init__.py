"""What executes dbt: `local`, `subprocess`, `cloud`, `fusion`, and entry-point plugins.

`base.Runtime` is the public plugin interface (with `RunResult`, `InvocationResult` and the
other result types, defined in `datum_dot.outcomes` and re-exported by `base`); `registry`
finds runtimes through the `datum_dot.runtimes` entry-point group. `warmth` and `warmup` keep
dbt warm in long-lived processes.

May import: `config`, `vcs`, `dbtcore`, `errors`, `outcomes`. The runtimes never import each
other (an import contract).
"""
