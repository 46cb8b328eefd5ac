"""Safe files: temporary files of killed processes are removed by the next user of their folder, never a live one's."""
import os
import subprocess
import sys

from hbkit.core.files import RunLock, atomic_path, build_once, remove_stale_tmp, tmp_name


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid   # exited and reaped: no process has it (PIDs are not reused this fast)


def test_runlock_removes_what_a_killed_report_left(tmp_path):
    """A kill in the report stage leaves ``.reference_effects.csv.<pid>.<id>.tmp.csv``; the next run in the folder
    removes it (also below the folder, e.g. a half-saved model), and keeps a live process's temporary file."""
    dead = _dead_pid()
    stale = tmp_path / f".reference_effects.csv.{dead}.0a1b2c3d.tmp.csv"
    stale.write_text("half")
    model_tmp = tmp_path / "models" / "xx-s0" / f".model.{dead}.deadbeef.tmp"
    model_tmp.mkdir(parents=True)
    (model_tmp / "model.safetensors").write_bytes(b"partial")
    live = tmp_path / f".results.csv.{os.getppid()}.0a1b2c3d.tmp.csv"   # our parent runs: not stale
    live.write_text("in progress")
    ours = tmp_name(tmp_path / "table.csv")
    ours.write_text("ours")
    keep = tmp_path / ".lock.owner.json.tmp"   # not tmp_name's pattern: not ours to remove
    keep.write_text("x")
    with RunLock(tmp_path):
        pass
    assert not stale.exists() and not model_tmp.exists()
    assert live.exists() and ours.exists() and keep.exists()
    assert remove_stale_tmp(tmp_path) == 0


def test_a_temporary_file_of_another_host_is_kept_until_it_is_old(tmp_path):
    """A run folder shared by the nodes of a cluster: a PID written on another host means nothing here, so its
    temporary file is kept while it may be in progress and removed only once it is two days old; this host's
    (by name) follows the PID rule."""
    import time

    from hbkit.core.files import HOST, OTHER_HOST_STALE_S
    dead = _dead_pid()
    other = "0" * 8 if HOST != "0" * 8 else "1" * 8
    fresh = tmp_path / f".results.csv.{dead}@{other}.0a1b2c3d.tmp.csv"     # another node, writing now
    old = tmp_path / f".effects.csv.{dead}@{other}.0a1b2c3d.tmp.csv"       # another node, long dead
    here = tmp_path / f".table.csv.{dead}@{HOST}.0a1b2c3d.tmp.csv"         # this host, dead PID
    for f in (fresh, old, here):
        f.write_text("x")
    then = time.time() - OTHER_HOST_STALE_S - 60
    os.utime(old, (then, then))
    assert tmp_name(tmp_path / "a.csv").name.split(".")[3] == f"{os.getpid()}@{HOST}"
    assert remove_stale_tmp(tmp_path) == 2
    assert fresh.exists() and not old.exists() and not here.exists()


def test_build_once_removes_a_killed_builders_half_build(tmp_path):
    dead = _dead_pid()
    target = tmp_path / "cache-entry"
    half = tmp_path / f".cache-entry.{dead}.12345678.tmp"
    half.mkdir()
    other = tmp_path / f".other-entry.{dead}.12345678.tmp"   # another entry's: its own build_once removes it
    other.mkdir()

    def build(tmp):
        tmp.mkdir()
        (tmp / "done").write_text("1")

    build_once(target, build, lambda p: (p / "done").is_file())
    assert (target / "done").is_file() and not half.exists() and other.exists()


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "x.csv"
    try:
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("killed")
    except RuntimeError:
        pass
    assert list(tmp_path.iterdir()) == []
