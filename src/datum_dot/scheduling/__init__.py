"""Cron schedules: a schedule is data in `config.yaml`, and a crontab line calling it.

`adding` and `changes` plan and apply `dot schedule add`, `pause`, `resume`, `remove` and `pin`;
`fire` runs one schedule (`dot schedule run`, what cron calls); `report` lists them;
`crontab`, `cronlines`, `cronexpr` and `cronenv` edit and read crontabs.

May import: `execute` and everything below it, but never the git adapter or `dbtcore`: git
and dbt are asked through `runs` (an import contract).
"""
