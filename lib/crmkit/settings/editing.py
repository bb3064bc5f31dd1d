"""Saving the consultant's judgements into ``client.yaml``, the way a careful person would.

The intake forms of the consultant's JupyterLab (:mod:`crmkit.delivery.intake`) change a few keys
of ``client.yaml`` — a capability score, a segment's expected relationship, a lever assumption.
A save here:

- **keeps the file the consultant wrote**: it is read and written with ruamel.yaml's round-trip
  mode, so comments, key order and quoting stay as they were (ruamel re-flows a long plain
  scalar that was folded over several lines onto one line: the text is the same, the lines are
  not; see :data:`LINE_WIDTH`);
- **validates the whole file as it will be**, through the same schema and cross-section checks
  as ``crmkit check`` (:class:`~crmkit.settings.client.ClientConfig`,
  :func:`~crmkit.settings.crosscheck.cross_check`): a key that was hand-edited into an invalid
  value is refused too, named, and the file is left as it was;
- **keeps the previous version** as ``client.yaml.bak`` beside it;
- **writes atomically** (a temporary file in the same folder, then :func:`os.replace`), so a
  reader sees the old file or the new one, never half of one;
- **never overwrites a save it has not seen**: under a lock, the checksum read when the file was
  opened is compared with the file's bytes at the moment of saving. When another save (another
  browser tab, an editor) came in between, the changes are applied to the file as it now is —
  unless that save changed one of the same keys: then this one is refused, names the keys and
  says why. Two racing saves never leave half of each, nor lose the first.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from crmkit.core.i18n import t
from crmkit.core.problems import LANGUAGE, Problem, ProblemList, UserError
from crmkit.settings.client import CONFIG_FILE, ClientConfig, problems_from_validation
from crmkit.settings.crosscheck import cross_check

__all__ = ["BACKUP_SUFFIX", "ClientYaml", "EditError", "LINE_WIDTH", "validation_problems"]

#: The previous version of ``client.yaml`` is kept as ``client.yaml.bak``.
BACKUP_SUFFIX = ".bak"
#: ruamel folds plain scalars at this width; a wide one keeps every value on one line rather
#: than fold it where the original did not (which leaves a trailing space on the folded line).
LINE_WIDTH = 4096
#: How long a save waits for another save of the same workspace to finish (seconds).
LOCK_TIMEOUT = 10.0


class EditError(UserError):
    """A save of ``client.yaml`` was refused; nothing was written.

    ``problems`` names each key (in the client's language) and says what was found and what was
    expected.
    """


def _yaml() -> YAML:
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = LINE_WIDTH
    return rt


def _checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _split(path: str | tuple) -> tuple:
    return tuple(path.split(".")) if isinstance(path, str) else tuple(path)


def validation_problems(raw: Any, lang: str) -> tuple[ClientConfig | None, list[Problem]]:
    """Validate a plain mapping as ``client.yaml``: the config, or the problems in ``lang``.

    Every problem names the key path (``context.internal.technological.score``), the value found
    and what the schema expects (:func:`crmkit.settings.client.problems_from_validation`).
    """
    if not isinstance(raw, dict):
        return None, [Problem(CONFIG_FILE, "invalid_yaml",
                              t("edit_not_a_mapping", lang, found=type(raw).__name__))]
    # the schema's own validators write their messages in the language of the check (LANGUAGE)
    token = LANGUAGE.set(lang)
    try:
        return ClientConfig.model_validate(raw), []
    except ValidationError as exc:
        return None, problems_from_validation(exc, lang)
    finally:
        LANGUAGE.reset(token)


def _segment_map(config: ClientConfig, root: Path):
    """The segment map the cross-section checks use; None when segments come from clustering
    or the map cannot be read (``crmkit check`` reports that one)."""
    if config.segmentation.method != "map":
        return None
    from crmkit.settings.segment_maps import load_map

    try:
        return load_map(config.segmentation.map, workspace=root)
    except Exception:  # noqa: BLE001 - an unreadable map is crmkit check's problem, not a save's
        return None


@contextlib.contextmanager
def _locked(folder: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the workspace's save lock: ``flock`` on the folder itself (no lock file left behind
    when a kernel dies), or an exclusive lock file where there is no ``fcntl``."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        fcntl = None
    deadline = time.monotonic() + timeout
    if fcntl is not None:
        fd = os.open(folder, os.O_RDONLY)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(folder) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # closing releases the lock
        return
    lock = folder / f".{CONFIG_FILE}.lock"  # pragma: no cover - Windows
    while True:  # pragma: no cover
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            if time.monotonic() > deadline:
                raise TimeoutError(lock) from None
            time.sleep(0.05)
    try:  # pragma: no cover
        yield
    finally:  # pragma: no cover
        os.close(fd)
        lock.unlink(missing_ok=True)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _get(document: Any, path: str | tuple, default: Any = None) -> Any:
    node = document
    for part in _split(path):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _apply(document: Any, changes: Mapping[str | tuple, Any]) -> CommentedMap:
    """A copy of ``document`` with ``changes`` (key path -> value) applied.

    A value of None removes the key; missing mappings on the way are created (at the end of
    their parent, so the order of the keys already there is kept).
    """
    document = copy.deepcopy(document) if document is not None else CommentedMap()
    for path, value in changes.items():
        *parents, last = _split(path)
        node = document
        for part in parents:
            if not isinstance(node.get(part), Mapping):
                node[part] = CommentedMap()
            node = node[part]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = copy.deepcopy(value)
    return document


class ClientYaml:
    """``client.yaml`` of a workspace, opened for editing.

    Parameters
    ----------
    workspace : path
        The client workspace folder.
    lang : {"en", "es"}, optional
        Language of the problems a refused save reports; default the file's ``language``.

    Attributes
    ----------
    path : Path
    checksum : str
        SHA-256 of the bytes read when the file was opened (or last saved by this object).
    """

    def __init__(self, workspace: str | Path, lang: str | None = None):
        self.root = Path(workspace)
        self.path = self.root / CONFIG_FILE
        self._read(self.path.read_bytes())
        own = self.document.get("language") if isinstance(self.document, Mapping) else None
        self.lang = lang or (own if own in ("en", "es") else "en")

    def _read(self, data: bytes) -> None:
        self.checksum = _checksum(data)
        self.document = _yaml().load(data.decode("utf-8-sig"))

    def get(self, path: str | tuple, default: Any = None) -> Any:
        """The value at a dotted key path (``"context.internal.people.score"``), or ``default``."""
        return _get(self.document, path, default)

    def changed(self, changes: Mapping[str | tuple, Any]) -> CommentedMap:
        """A copy of the document as read with ``changes`` applied (see :func:`_apply`)."""
        return _apply(self.document, changes)

    def render(self, document: Any) -> str:
        out = io.StringIO()
        _yaml().dump(document, out)
        return out.getvalue()

    def check(self, text: str, channels: Iterable[str] = ()) -> list[Problem]:
        """The problems of ``text`` as ``client.yaml``: schema and cross-section checks."""
        raw = yaml.safe_load(text)  # read back as crmkit check reads it
        config, problems = validation_problems(raw, self.lang)
        if config is None:
            return problems
        return cross_check(config.model_copy(update={"language": self.lang}),
                           _segment_map(config, self.root), channels)

    def save(self, changes: Mapping[str | tuple, Any], *,
             channels: Iterable[str] = ()) -> Path:
        """Apply ``changes``, validate the whole file, keep a backup and write it atomically.

        When the file changed on disk since it was read (another tab saved), the changes are
        applied to the file as it is now if none of their keys was changed there (the other
        save is kept: this one "sees" it); if one was, the save is refused.

        Parameters
        ----------
        changes : mapping
            Key path (dotted, or a tuple when a key holds a dot) -> new value.
        channels : iterable of str
            The channels of the client's interactions, for the cross-section checks (as
            ``crmkit check`` passes them).

        Returns
        -------
        Path
            The backup of the previous version.

        Raises
        ------
        EditError
            The file as it would be is invalid (each problem names the key), or another save
            changed one of the same keys since the file was read; nothing is written.
        """
        problems = ProblemList()
        try:
            with _locked(self.root):
                on_disk = self.path.read_bytes()
                base = self.document
                if _checksum(on_disk) != self.checksum:
                    fresh = _yaml().load(on_disk.decode("utf-8-sig"))
                    clashes = [".".join(_split(p)) for p in changes
                               if _get(fresh, p) != _get(base, p)]
                    for clash in clashes:
                        problems.add(CONFIG_FILE, "changed_on_disk",
                                     t("edit_changed_on_disk", self.lang, path=clash))
                    if problems:
                        raise EditError(problems)
                    base = fresh
                document = _apply(base, changes)
                text = self.render(document)
                found = self.check(text, channels)
                if found:
                    problems.extend(found)
                    raise EditError(problems)
                backup = self.path.with_name(CONFIG_FILE + BACKUP_SUFFIX)
                _write_atomically(backup, on_disk)
                data = text.encode("utf-8")
                _write_atomically(self.path, data)
        except TimeoutError:
            problems.add(CONFIG_FILE, "locked", t("edit_locked", self.lang))
            raise EditError(problems) from None
        self.document = document
        self.checksum = _checksum(data)
        return backup

    def reload(self) -> None:
        """Read the file again (after another tab saved it, or it was edited by hand)."""
        self._read(self.path.read_bytes())
