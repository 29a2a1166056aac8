"""The tuned entries of a cache file, read-only through Python's sqlite3 (what `rnnjit-cache list`
and `show` print). The schema is cache/src/store.cpp's; this reader knows version 3."""
import dataclasses
import math
import os
import urllib.parse

from . import _lib
from ._errors import CacheError

SCHEMA_VERSION = 3  # cache/include/rnnjit/cache/store.hpp, kSchemaVersion


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One config the tuner timed; time_us is inf when it failed (disposition says how)."""
    config: str
    time_us: float
    disposition: str
    message: str


@dataclasses.dataclass(frozen=True)
class TunedEntry:
    """One tuned problem. steps: 0 for one RNN step; > 0 for a sequence, tuned for chunks of
    that many steps. stale: made by other kernel templates or another engine version, so this
    library never uses it (it is replaced on the next tuning)."""
    gpu: str
    batch: int
    input: int
    hidden: int
    output: int
    dtype: str
    precision: str
    steps: int  # 0: one step; > 0: a sequence's chunk of steps
    winner: str
    winner_us: float
    candidates: tuple
    engine_version: str
    template_hash: str
    created_at: int  # unix seconds
    stale: bool

    @property
    def shape(self):
        """(B, I, H, O)."""
        return (self.batch, self.input, self.hidden, self.output)


def default_path(option=None):
    """Where an Engine(cache=option) keeps its cache ("off" for memory); needs no GPU."""
    lib = _lib.load()
    out = _lib.ctypes.c_char_p()
    _lib.check(lib, lib.rnnjit_cache_resolve_path(None if option is None else os.fsencode(option),
                                                  _lib.ctypes.byref(out)))
    return os.fsdecode(out.value)


def entries(path=None, gpu=None):
    """The tuned entries of the cache file at `path` (default: default_path()), newest first;
    gpu: only this GPU key. [] when the file does not exist yet or the cache is "off"."""
    import sqlite3  # here, so that importing rnnjit never needs it

    path = os.fspath(path) if path is not None else default_path()
    if path in ("off", ":memory:", "") or not os.path.exists(path):
        return []
    lib = _lib.load()
    current = (lib.rnnjit_version().decode(), lib.rnnjit_template_hash().decode())
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True, timeout=5.0)
    except sqlite3.Error as e:
        raise CacheError(f"cannot open the cache {path} read-only: {e}") from None
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise CacheError(f"the cache {path} has schema version {version}; this rnnjit reads version "
                             f"{SCHEMA_VERSION} (`rnnjit-cache` of the matching version converts it)")
        where, args = ("WHERE gpu = ?", (gpu,)) if gpu is not None else ("", ())
        rows = db.execute("SELECT id, gpu, b, i, h, o, dtype, precision, steps, template_hash, engine_version, "
                          f"winner, winner_us, created_at FROM tuning {where} "
                          "ORDER BY created_at DESC, gpu, b, i, h, o, dtype, precision, steps, template_hash",
                          args).fetchall()
        out = []
        for (rid, g, b, i, h, o, dtype, precision, steps, template_hash, engine_version, winner, winner_us,
             created_at) in rows:
            cands = tuple(Candidate(config, math.inf if t is None else float(t), disp, msg) for config, t, disp, msg in
                          db.execute("SELECT config, time_us, disposition, message FROM candidates "
                                     "WHERE tuning_id = ? ORDER BY rank", (rid,)))
            out.append(TunedEntry(g, b, i, h, o, dtype, precision, steps, winner, winner_us, cands, engine_version,
                                  template_hash, created_at, (engine_version, template_hash) != current))
        return out
    except sqlite3.Error as e:
        raise CacheError(f"cannot read the cache {path}: {e}") from None
    finally:
        db.close()
