"""A real systemd, booted as PID 1 of a private PID + mount namespace, for integration tests.

The machine has no systemd as PID 1, but root can boot one in a new namespace and drive it from
outside with ``nsenter``. The namespace shares the machine's file systems, so before systemd is
exec'd the boot script hides everything a booting systemd would clean or change:

- private tmpfs over ``/run``, ``/tmp`` and ``/var/tmp`` (``systemd-tmpfiles`` at boot would
  otherwise wipe the machine's shared ``/tmp``: every file of every process);
- runtime masks (``/run/systemd/system``, inside that private ``/run``, so they vanish with the
  namespace) for the tmpfiles units, the consoles, and every unit that would act on the shared
  machine: the services and timers the machine itself enables (a database or a Prometheus
  started here would take the machine's ports and data directories), kernel settings (sysctl,
  binfmt, modules), users (sysusers), the clock (timesyncd) and the persistent journal (journal
  flush, so journald keeps its files in the private ``/run``).

:func:`booted_systemd` yields a :class:`SystemdNamespace` and always ends the namespace with
``kill -KILL`` of its PID 1, which takes every process in it along.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SYSTEMD = Path("/lib/systemd/systemd")
TOOLS = ("unshare", "nsenter", "systemctl", "journalctl", "systemd-analyze")

# The recipe's masks: tmpfiles (wipes /tmp) and the consoles (nothing to log in on).
RECIPE_MASKS = (
    "systemd-tmpfiles-setup.service", "systemd-tmpfiles-clean.timer",
    "systemd-tmpfiles-clean.service", "systemd-tmpfiles-setup-dev.service",
    "systemd-tmpfiles-setup-dev-early.service", "getty.target", "console-getty.service",
)
# Units that act on the shared machine rather than on the namespace.
MACHINE_MASKS = (
    "systemd-sysctl.service", "systemd-binfmt.service", "proc-sys-fs-binfmt_misc.automount",
    "systemd-modules-load.service", "kmod-static-nodes.service", "systemd-sysusers.service",
    "systemd-firstboot.service", "systemd-machine-id-commit.service", "systemd-timesyncd.service",
    "systemd-journal-flush.service", "systemd-random-seed.service", "systemd-update-utmp.service",
    "systemd-update-utmp-runlevel.service", "systemd-pstore.service", "systemd-repart.service",
    "ldconfig.service", "systemd-hwdb-update.service", "systemd-journal-catalog-update.service",
    "systemd-udevd.service", "systemd-udev-trigger.service", "systemd-udev-settle.service",
    "systemd-logind.service", "systemd-user-sessions.service", "systemd-remount-fs.service",
    "packagekit.service",
    "apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "e2scrub_all.timer",
    "fstrim.timer", "man-db.timer",
)

KEEP = frozenset({"dbus.service"})
"""The system bus stays: it lives in the private ``/run`` and ``systemctl`` may use it."""

BOOT_SCRIPT = r"""
set -e
# Paths under /tmp or /var/tmp the tests need inside (a checkout cloned there, its .venv): held
# open before the private tmpfs hides them, then bound back at the same place, in this namespace
# only (mount propagation is private).
fd=3
held=()
IFS=: read -r -a keep <<< "${WKB_KEEP_PATHS:-}"
for path in "${keep[@]}"; do
  [ -n "$path" ] || continue
  eval "exec $fd<\"\$path\""
  held+=("$fd:$path")
  fd=$((fd + 1))
done
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /var/tmp
for entry in "${held[@]}"; do
  number=${entry%%:*}
  path=${entry#*:}
  mkdir -p "$path"
  mount --no-canonicalize --bind "/proc/self/fd/$number" "$path"
  eval "exec $number<&-"
done
mkdir -p /run/systemd/system
for u in "$@"; do
  ln -sf /dev/null "/run/systemd/system/$u"
done
exec /lib/systemd/systemd --system --unit=multi-user.target --log-target=console \
  --log-level=notice
"""


def machine_enabled_units(etc: Path = Path("/etc")) -> list[str]:
    """Every unit the machine enables: ``*.wants``/``*.requires`` links in its unit directory,
    and the SysV scripts of runlevels 2-5 (systemd's generator turns them into services)."""
    names: set[str] = set()
    unit_dir = etc / "systemd" / "system"
    if unit_dir.is_dir():
        for wants in unit_dir.iterdir():
            if wants.is_dir() and wants.suffix in (".wants", ".requires"):
                names.update(link.name for link in wants.iterdir())
    for level in "2345":
        rc_dir = etc / f"rc{level}.d"
        if rc_dir.is_dir():
            names.update(f"{link.name[3:]}.service" for link in rc_dir.iterdir()
                         if link.name[:1] in "SK" and link.name[1:3].isdigit())
    return sorted(names - KEEP)


def missing_requirements() -> str | None:
    """Why a namespace cannot be booted here, or None when it can."""
    if os.geteuid() != 0:
        return "booting systemd in a namespace needs root"
    if not SYSTEMD.exists():
        return f"no systemd at {SYSTEMD} (Debian package systemd)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing tools: {', '.join(missing)} (Debian packages systemd, util-linux)"
    return None


def require_systemd() -> None:
    """Fail under CI (``CI=true``) when the namespace cannot be booted; skip otherwise."""
    reason = missing_requirements()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}; .ci/run installs systemd and dbus as root")
    pytest.skip(reason)


@dataclass
class SystemdNamespace:
    """A booted systemd: ``pid`` is its PID as seen from outside (PID 1 inside)."""

    pid: int
    process: subprocess.Popen[bytes]
    console: Path
    commands: list[list[str]] = field(default_factory=list)
    """Every command run in the namespace, in order."""

    def run(self, *args: str, timeout: float = 60, check: bool = False,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace (its mounts and PIDs, the machine's network)."""
        argv = ["nsenter", "-t", str(self.pid), "-m", "-p", *args]
        self.commands.append(list(args))
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                              env=None if env is None else dict(env))
        if check and done.returncode != 0:
            raise AssertionError(
                f"`{' '.join(args)}` exited {done.returncode}\nstdout: {done.stdout}\n"
                f"stderr: {done.stderr}")
        return done

    def systemctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.run("systemctl", "--no-pager", *args, timeout=timeout)

    def journal(self, unit: str) -> str:
        return self.run("journalctl", "--no-pager", "-o", "cat", "-u", unit).stdout

    def main_pid(self, unit: str) -> int:
        text = self.systemctl("show", "-p", "MainPID", "--value", unit).stdout.strip()
        return int(text or 0)

    def outside_pid(self, inside_pid: int) -> int:
        """The machine's PID of a process known by its PID inside the namespace."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                status = (entry / "status").read_text()
                for line in status.splitlines():
                    if line.startswith("NSpid:"):
                        pids = line.split()[1:]
                        if len(pids) >= 2 and int(pids[-1]) == inside_pid and \
                                self._in_namespace(entry):
                            return int(entry.name)
        raise LookupError(f"no process with PID {inside_pid} in the namespace of {self.pid}")

    def _in_namespace(self, proc_dir: Path) -> bool:
        try:
            return os.readlink(proc_dir / "ns" / "pid") == os.readlink(
                f"/proc/{self.pid}/ns/pid")
        except OSError:
            return False

    def wait_until(self, unit: str, state: str, timeout: float = 30) -> str:
        """Poll ``systemctl is-active`` until it says ``state``; return the last answer."""
        deadline = time.monotonic() + timeout
        answer = ""
        while time.monotonic() < deadline:
            answer = self.systemctl("is-active", unit).stdout.strip()
            if answer == state:
                return answer
            time.sleep(0.2)
        return answer


def _child_pid(parent: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    children = Path(f"/proc/{parent}/task/{parent}/children")
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            text = children.read_text().split()
            if text:
                return int(text[0])
        time.sleep(0.05)
    raise TimeoutError(f"unshare ({parent}) started no child within {timeout} s")


def _hidden_paths() -> list[str]:
    """The checkout and interpreter when they sit under a directory the namespace masks."""
    repo = Path(__file__).resolve().parents[2]
    found = []
    for path in (repo, Path(sys.executable).resolve().parent, Path(sys.prefix).resolve()):
        text = str(path)
        if any(text == top or text.startswith(top + "/") for top in ("/tmp", "/var/tmp")):
            found.append(text)
    return sorted(set(found))


@contextlib.contextmanager
def booted_systemd(console: Path, extra_masks: Sequence[str] = (),
                   boot_timeout: float = 60) -> Iterator[SystemdNamespace]:
    """Boot systemd in a new PID + mount namespace; kill the namespace when the block ends.

    ``console`` receives systemd's console log (opened before the namespace hides ``/tmp``).
    """
    require_systemd()
    masks = sorted({*RECIPE_MASKS, *MACHINE_MASKS, *machine_enabled_units(), *extra_masks})
    env = {**os.environ, "WKB_KEEP_PATHS": ":".join(_hidden_paths())}
    with console.open("wb") as log:
        process = subprocess.Popen(
            ["unshare", "--fork", "--pid", "--mount", "--mount-proc", "--propagation", "private",
             "bash", "-c", BOOT_SCRIPT, "boot", *masks],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env=env,
        )
    pid = 0
    try:
        pid = _child_pid(process.pid, timeout=10)
        ns = SystemdNamespace(pid=pid, process=process, console=console)
        state = ""
        deadline = time.monotonic() + boot_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            done = ns.run("systemctl", "is-system-running", timeout=10)
            state = done.stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(0.2)
        if state not in ("running", "degraded"):
            raise RuntimeError(
                f"systemd in the namespace did not come up (state {state!r}); console:\n"
                + console.read_text(errors="replace")[-4000:])
        yield ns
    finally:
        # kill -KILL of PID 1 ends every process of the namespace; unshare then reaps it and
        # exits. Only if it does not is unshare killed too.
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
