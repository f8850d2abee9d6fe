"""A bench reserved across hosts: a labgrid place, acquired through labgrid's coordinator.

hil drives the coordinator with ``labgrid-client`` in a subprocess rather than
importing labgrid: labgrid depends on ``pyserial-labgrid``, a fork that
replaces pyserial's ``serial`` module, and hil's serial transport must keep
upstream pyserial. So labgrid lives in its own virtual environment
(``make install`` puts it in ``.tools/labgrid``) and hil only needs its
command line, as it needs Allure's.

``acquire`` retries while another user holds the place, up to a bounded
timeout, then raises ``PlaceBusy`` naming the holder (labgrid's ``host/user``).
A place may also be asked for by tags, through a labgrid reservation.
Each pytest-xdist worker is its own labgrid user (``<user>-gwN``), so two
workers never share one acquisition by accident.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from hil.errors import BenchError, HilError

CLIENT_ENV = "HIL_LABGRID_CLIENT"  # path of labgrid-client, when it is not the default
# `make install` puts labgrid in its own venv beside the Allure command line
BUNDLED_CLIENT = Path(__file__).resolve().parents[2] / ".tools/labgrid/bin/labgrid-client"
CALL_TIMEOUT_S = 30.0  # one labgrid-client call (it connects, syncs, acts, exits)
POLL_S = 0.5  # between attempts while the place is held by someone else


class PlaceBusy(HilError, TimeoutError):
    """The place stayed acquired by someone else for the whole wait."""


class PlaceError(HilError):
    """labgrid-client failed for another reason (no such place, coordinator down…)."""


def client_path() -> str:
    """labgrid-client: $HIL_LABGRID_CLIENT, else the bundled one, else the one on PATH."""
    given = os.environ.get(CLIENT_ENV)
    if given:
        return given
    if BUNDLED_CLIENT.exists():
        return str(BUNDLED_CLIENT)
    found = shutil.which("labgrid-client")
    if found is None:
        raise BenchError(
            "the bench names a labgrid place but labgrid-client is not installed: "
            f"`make install` puts it in .tools/labgrid, or set {CLIENT_ENV}"
        )
    return found


def labgrid_user(worker: str) -> str:
    """This process's labgrid user: the login name, plus the xdist worker if there is one."""
    user = getpass.getuser()
    return user if worker in ("", "main") else f"{user}-{worker}"


def _tagged(text: str) -> dict[str, dict[str, str]]:
    """``labgrid-client -v places`` → place name → {"tags": "k=v, …", "acquired": …}."""
    places: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if line.startswith("Place '") and line.endswith("':"):
            current = places.setdefault(line[len("Place '") : -2], {})
        elif current is not None:
            key, _, value = line.strip().partition(": ")
            if key in ("tags", "acquired"):
                current[key] = value
    return places


class Place:
    """One labgrid place on one coordinator, as this process's labgrid user.

    Named (``name``), or any free place whose tags match (``tags``): then hil
    makes a labgrid reservation, waits for the coordinator to allocate a place
    to it and acquires that one (``-p +TOKEN``), as ``labgrid-client reserve``
    users do.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        coordinator: str | None = None,
        worker: str = "main",
    ) -> None:
        if (name is None) == (not tags):
            raise BenchError("a labgrid place is named by its name or by tags, one of the two")
        self.name = name or ""
        self.tags = dict(tags or {})
        self.token: str | None = None  # the reservation, when reserved by tags
        self.coordinator = coordinator or os.environ.get("LG_COORDINATOR", "127.0.0.1:20408")
        self.user = labgrid_user(worker)
        self.host = os.environ.get("LG_HOSTNAME", socket.gethostname())
        self.acquired = False

    @property
    def identity(self) -> str:
        """How the coordinator names this process: ``host/user``."""
        return f"{self.host}/{self.user}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``labgrid-client -p <this place> ARGS`` (the reservation's ``+TOKEN`` if reserved)."""
        pattern = f"+{self.token}" if self.token and not self.acquired else self.name
        return self._client("-p", pattern, *args)

    def _client(
        self, *args: str, timeout_s: float = CALL_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "LG_COORDINATOR": self.coordinator,
            "LG_USERNAME": self.user,
            "LG_HOSTNAME": self.host,
        }
        try:
            return subprocess.run(
                [client_path(), *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise PlaceError(
                f"labgrid-client {' '.join(args)} did not finish within {timeout_s:g} s "
                f"(coordinator {self.coordinator})",
                place=self.name,
            ) from err

    def _reserve(self, timeout_s: float) -> None:
        """Reserve a place by tags and wait (bounded) until the coordinator allocates one."""
        filters = [f"{k}={v}" for k, v in sorted(self.tags.items())]
        made = self._client("reserve", "--shell", *filters)
        token = made.stdout.strip().removeprefix("export LG_TOKEN=")
        if made.returncode != 0 or not token or " " in token:
            raise self._failed("reserve", made)
        self.token = token
        try:
            self._client("wait", token, timeout_s=timeout_s)
        except PlaceError:
            self._cancel()
            listed = self._client("-v", "places")
            wanted = {f"{k}={v}" for k, v in self.tags.items()}
            holders = [
                f"{name} by {info.get('acquired', '?')}"
                for name, info in _tagged(listed.stdout).items()
                if wanted <= set(info.get("tags", "").split(", "))
            ]
            raise PlaceBusy(
                f"no labgrid place tagged {' '.join(filters)} became free within "
                f"{timeout_s:g} s: "
                + ("; ".join(holders) or "no place has these tags")
                + f" (coordinator {self.coordinator}; we are {self.identity})",
                tags=self.tags,
                holder="; ".join(holders),
            ) from None
        shown = self._run("show")
        first = shown.stdout.splitlines()[:1]
        if shown.returncode != 0 or not first or not first[0].startswith("Place '"):
            self._cancel()
            raise self._failed("show (the reserved place)", shown)
        self.name = first[0][len("Place '") : -2]

    def _cancel(self) -> None:
        token, self.token = self.token, None
        if token:
            self._client("cancel-reservation", token)

    def holder(self) -> str | None:
        """Who holds the place (``host/user``), or None when it is free."""
        shown = self._run("show")
        if shown.returncode != 0:
            raise self._failed("show", shown)
        for line in shown.stdout.splitlines():
            key, _, value = line.strip().partition(": ")
            if key == "acquired":
                return None if value in ("", "None") else value
        raise PlaceError(f"labgrid-client show printed no 'acquired:' line: {shown.stdout!r}")

    def acquire(self, timeout_s: float = 60.0) -> None:
        """Acquire the place, waiting at most ``timeout_s`` while someone else holds it."""
        deadline = time.monotonic() + timeout_s
        if self.tags and self.token is None:
            self._reserve(timeout_s)
        while True:
            done = self._run("acquire")
            if done.returncode == 0:
                self.acquired = True
                return
            if "already acquired" not in done.stderr + done.stdout:
                raise self._failed("acquire", done)
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_S)
        holder = self.holder() or "nobody any more (it was released just now)"
        raise PlaceBusy(
            f"labgrid place {self.name!r} stayed acquired for {timeout_s:g} s: held by "
            f"{holder} (coordinator {self.coordinator}; we are {self.identity})",
            place=self.name,
            holder=holder,
        )

    def release(self) -> None:
        """Idempotent: releases only what this object acquired."""
        if not self.acquired:
            return
        self.acquired = False
        done = self._run("release")
        self._cancel()  # a reservation, if the place came from one
        if done.returncode != 0:
            raise self._failed("release", done)

    def _failed(self, what: str, done: subprocess.CompletedProcess[str]) -> PlaceError:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()
        return PlaceError(
            f"labgrid-client {what} on place {self.name!r} failed (exit {done.returncode}, "
            f"coordinator {self.coordinator}): {said[-1] if said else 'no output'}",
            place=self.name,
        )
