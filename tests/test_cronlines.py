"""Our crontab lines: found by their marker, removed leaving every other byte as it was."""

from __future__ import annotations

import stat
from pathlib import Path

from datum_dot.scheduling import cronlines
from datum_dot.scheduling.cronlines import CrontabSource

CRONTAB = (
    "# m h dom mon dow command\r\n"
    "MAILTO=ops@example.invalid\n"
    "0 6 * * * /bin/true build prod@main # datum-dot project=shop schedule=nightly\n"
    "@hourly cd /srv && FOO=1 /missing/dot run # datum-dot project=shop schedule=hourly\n"
    "15 * * * * /usr/bin/env echo 'not ours'  \n"
    "\t*/5 * * * * /bin/true # datum-dot project=other schedule=nightly\n"
    "0 1 * * * echo 'caf\xe9' # datum-dot project=shop schedule=old"
)


def test_cronlines_finds_marked_lines_of_one_project() -> None:
    lines = cronlines.marked_lines(CRONTAB, "shop")
    assert [(ln.number, ln.schedule, ln.timing) for ln in lines] == [
        (3, "nightly", "0 6 * * *"),
        (4, "hourly", "@hourly"),
        (7, "old", "0 1 * * *"),
    ]
    assert lines[0].command == "/bin/true build prod@main"
    assert lines[0].executable == "/bin/true"
    assert lines[0].has_executable()
    assert lines[1].executable == "/missing/dot"
    assert not lines[1].has_executable()
    assert lines[2].executable == "echo"
    assert len(cronlines.marked_lines(CRONTAB)) == 4


def test_cronlines_remove_keeps_every_other_byte() -> None:
    lines = cronlines.marked_lines(CRONTAB, "shop")
    updated = cronlines.remove_lines(CRONTAB, [lines[1].text, lines[2].text])
    assert updated == (
        "# m h dom mon dow command\r\n"
        "MAILTO=ops@example.invalid\n"
        "0 6 * * * /bin/true build prod@main # datum-dot project=shop schedule=nightly\n"
        "15 * * * * /usr/bin/env echo 'not ours'  \n"
        "\t*/5 * * * * /bin/true # datum-dot project=other schedule=nightly\n"
    )


def test_cronlines_crontab_file_round_trip_keeps_mode_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "crontab"
    raw = CRONTAB.encode("latin-1")  # not valid UTF-8 on purpose
    path.write_bytes(raw)
    path.chmod(0o640)
    source = cronlines.crontab_source({"DOT_CRONTAB": str(path)})
    assert source == CrontabSource(file=path)
    old = cronlines.marked_lines(cronlines.read_crontab(source), "shop")[2]
    assert cronlines.remove_from_crontab(source, [old.text]) == 1
    assert path.read_bytes() == raw.replace(
        b"\n" + old.text.encode("utf-8", "surrogateescape"), b"\n"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert cronlines.remove_from_crontab(source, ["no such line"]) == 0


def test_cronlines_missing_file_is_an_empty_crontab(tmp_path: Path) -> None:
    source = CrontabSource(file=tmp_path / "none")
    assert cronlines.read_crontab(source) == ""


def test_cronlines_without_file_or_program_there_is_no_crontab(tmp_path: Path) -> None:
    assert cronlines.crontab_source({"PATH": str(tmp_path)}) is None


def test_cronlines_users_crontab_through_the_crontab_program(tmp_path: Path) -> None:
    # cron is not installed here: a stand-in with crontab's interface (-l; FILE installs FILE).
    store = tmp_path / "spool"
    program = tmp_path / "crontab"
    program.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = -l ]; then [ -f {store} ] || {{ echo "no crontab for $USER" >&2; exit 1; }}\n'
        f"  exec cat {store}; fi\n"
        f'cp "$1" {store}\n'
    )
    program.chmod(0o755)
    source = cronlines.crontab_source({"PATH": str(tmp_path)})
    assert source == CrontabSource(program=program)
    assert cronlines.read_crontab(source) == ""
    cronlines.write_crontab(source, CRONTAB)
    assert cronlines.read_crontab(source) == CRONTAB
    old = cronlines.marked_lines(CRONTAB, "shop")[0]
    assert cronlines.remove_from_crontab(source, [old.text]) == 1
    assert old.text not in cronlines.read_crontab(source)
    assert "MAILTO=ops@example.invalid\n" in cronlines.read_crontab(source)
