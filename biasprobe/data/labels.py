"""Labels: which of the model's classes an image is, checked so a wrong label set never passes.

Labels come from class folder names, a ``--classes`` file, a manifest's ``label`` column or
the object names of Pascal VOC boxes. When the model is known, its classes come as a
``ClassSpace`` (plain values: names, and the wnids of an ImageNet-1k model), so this package
never imports ``models``. The rules (docs/reliability.md, README "Inputs"):

1. ``--classes FILE`` decides: a folder's label is its entry. A line-numbered file (text, JSON
   list) of wnids, with an ImageNet-1k model, is read by wnid: each wnid gets the model's
   index for it, not its line number. A file that gives indices (CSV, JSON object) must agree
   with an ImageNet-1k model on every wnid it lists, or it is refused.
2. Without it, folders named by integers are that class index; folders named by ImageNet
   wnids get an ImageNet-1k model's index for the wnid (a wnid the model lacks is skipped);
   any other set of names is numbered 0..F-1 in sorted order (torchvision's ImageFolder),
   which is accepted only when the model has exactly F classes, and refused otherwise.
3. Labels outside the model's classes ``0..C-1``: refused when no label fits, one warning line
   when some do not (they count as wrong answers, docs/protocols.md section 3.2).

Without a model (library calls), rules 1 and 2 apply without the checks against the model.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Protocol

from biasprobe.core.errors import InputError
from biasprobe.data.classes import ClassMap

__all__ = ["ClassSpace", "FolderLabels", "Labeller", "is_wnid"]

log = logging.getLogger(__name__)

_WNID = re.compile(r"n[0-9]{8}")
_INTEGER = re.compile(r"[0-9]+")


def is_wnid(text: str) -> bool:
    """A WordNet id as ImageNet names its classes: ``n`` and eight digits (``n01440764``)."""
    return _WNID.fullmatch(text) is not None


def _examples(items: Sequence[object], count: int = 3) -> str:
    shown = ", ".join(str(x) for x in items[:count])
    return shown + (", ..." if len(items) > count else "")


@dataclass(frozen=True)
class ClassSpace:
    """The classes a model predicts: ``names[i]`` is class ``i``; ``wnids[i]`` its ImageNet wnid
    when the model has the 1,000 ImageNet-1k classes (None otherwise)."""

    names: tuple[str, ...]
    wnids: tuple[str, ...] | None = None
    model: str = "the model"

    def __post_init__(self) -> None:
        if self.wnids is not None and len(self.wnids) != len(self.names):
            raise ValueError(f"{len(self.wnids)} wnids for {len(self.names)} classes")

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @cached_property
    def _wnid_index(self) -> dict[str, int]:
        return {wnid: i for i, wnid in enumerate(self.wnids or ())}

    def wnid_index(self, wnid: str) -> int | None:
        """The model's class index for an ImageNet wnid (None when it has no such class)."""
        return self._wnid_index.get(wnid)

    def describe(self) -> str:
        kind = "ImageNet-1k classes" if self.wnids is not None else "classes"
        return f"model {self.model} ({self.num_classes} {kind})"


@dataclass(frozen=True)
class FolderLabels:
    """Each class folder's (index, name), why the others have none, and one line saying how."""

    labels: dict[str, tuple[int, str]]
    reasons: dict[str, str]
    how: str
    level: int = logging.INFO


class _Labelled(Protocol):
    @property
    def label(self) -> int | None: ...


@dataclass(frozen=True)
class Labeller:
    """Turns folder names and label texts into class indices by the module's rules.

    Build it with ``Labeller.create(classes, space)``, which checks the classes file against
    the model's classes once.
    """

    classes: ClassMap | None = None
    space: ClassSpace | None = None
    absent: Mapping[str, str] = field(default_factory=dict)
    by_wnid: bool = False

    @classmethod
    def create(cls, classes: ClassMap | None = None, space: ClassSpace | None = None) -> Labeller:
        if classes is None or space is None or space.wnids is None:
            return cls(classes, space)
        source = classes.source or "--classes"
        wnids = [k for k in classes.entries if is_wnid(k)]
        if not wnids:
            return cls(classes, space)
        if classes.positional:
            others = [k for k in classes.entries if not is_wnid(k)]
            if others:
                raise InputError(
                    f"classes file {source} mixes ImageNet wnids (e.g. {wnids[0]}) and other folder names "
                    f"(e.g. {others[0]!r}); with {space.describe()} a line-numbered file is read by wnid: "
                    "name every class by its wnid, or give explicit indices (a CSV folder,index,name)"
                )
            entries: dict[str, tuple[int, str]] = {}
            absent: dict[str, str] = {}
            for wnid, (_, name) in classes.entries.items():
                index = space.wnid_index(wnid)
                if index is None:
                    absent[wnid] = f"class {wnid} is not one of the classes of {space.describe()}"
                else:
                    entries[wnid] = (index, name)
            return cls(replace(classes, entries=entries, positional=False), space, absent, by_wnid=True)
        for wnid in wnids:
            index, name = classes.entries[wnid]
            own = space.wnid_index(wnid)
            if own != index and 0 <= index < space.num_classes:
                assert space.wnids is not None
                theirs = f"its class for {wnid} is {own}" if own is not None else f"it has no class {wnid}"
                raise InputError(
                    f"classes file {source} maps {wnid} ({name}) to class {index}, but class {index} of "
                    f"{space.describe()} is {space.wnids[index]} ({space.names[index]}) and {theirs}: "
                    "fix the file, or leave --classes out to label wnid folders from the model"
                )
        return cls(classes, space)

    # -- class folders -------------------------------------------------------------------

    def folder_labels(self, folders: Sequence[str]) -> FolderLabels:
        """Labels for the class folders of an ImageFolder tree (names as table text, sorted)."""
        folders = sorted(folders)
        if self.classes is not None:
            return self._from_classes_file(folders)
        if all(_INTEGER.fullmatch(f) for f in folders):
            labels = {f: (int(f), f) for f in folders}
            shown = _examples(folders)
            return FolderLabels(labels, {}, f"labels: {len(folders)} class folders named by class index ({shown})", logging.DEBUG)
        space = self.space
        if space is not None and space.wnids is not None and all(is_wnid(f) for f in folders):
            return self._from_wnids(folders, space)
        return self._sorted_numbering(folders)

    def _from_classes_file(self, folders: list[str]) -> FolderLabels:
        assert self.classes is not None
        entries = self.classes.entries
        labels = {f: entries[f] for f in folders if f in entries}
        reasons = {
            f: self.absent.get(f, f"class folder {f!r} is not in the classes file") for f in folders if f not in labels
        }
        how = f"labels: {len(labels)} of {len(folders)} class folders from the classes file {self.classes.source or ''}".rstrip()
        if self.by_wnid and self.space is not None:
            how += f", read by wnid as {self.space.describe()} numbers them"
        return FolderLabels(labels, reasons, how)

    def _from_wnids(self, folders: list[str], space: ClassSpace) -> FolderLabels:
        labels: dict[str, tuple[int, str]] = {}
        reasons: dict[str, str] = {}
        for folder in folders:
            index = space.wnid_index(folder)
            if index is None:
                reasons[folder] = f"class folder {folder!r} is a wnid that is not one of the classes of {space.describe()}"
            else:
                labels[folder] = (index, space.names[index])
        shown = _examples([f"{f} -> {i} {n}" for f, (i, n) in labels.items()], 2)
        how = (
            f"labels: {len(folders)} class folders named by ImageNet wnid, each labelled with the class "
            f"{space.describe()} has for it ({shown})"
        )
        if reasons:
            how += f"; {len(reasons)} folders are wnids it does not predict and are skipped ({_examples(list(reasons))})"
        return FolderLabels(labels, reasons, how, logging.WARNING if reasons else logging.INFO)

    def _sorted_numbering(self, folders: list[str]) -> FolderLabels:
        count = len(folders)
        space = self.space
        if space is not None and count != space.num_classes:
            if all(is_wnid(f) for f in folders):
                what = f"are ImageNet wnids (e.g. {folders[0]}), but {space.describe()} is not an ImageNet-1k model"
            else:
                named = [f for f in folders if not _INTEGER.fullmatch(f)]
                kind = "class indices or ImageNet wnids" if space.wnids is not None else "class indices"
                what = (
                    f"are not all {kind} (e.g. {named[0]!r}), and numbering them 0..{count - 1} in sorted order "
                    f"cannot match {space.describe()}"
                )
            rename = "by class index" + (" or by ImageNet wnid" if space.wnids is not None else "")
            raise InputError(
                f"the {count} class folders {what}: pass --classes FILE giving each folder's class index, "
                f"or name the folders {rename}"
            )
        labels = {f: (i, f) for i, f in enumerate(folders)}
        how = f"labels: {count} class folders numbered in sorted order ({_examples([f'{f} -> {i}' for f, (i, _) in labels.items()])})"
        level = logging.INFO
        integers = [f for f in folders if _INTEGER.fullmatch(f)]
        if integers:
            moved = [f for f in integers if labels[f][0] != int(f)]
            how += (
                "; folder names mix integers and other names, so integer names are not their label"
                + (f" (folder {moved[0]!r} is label {labels[moved[0]][0]})" if moved else "")
            )
            level = logging.WARNING
        return FolderLabels(labels, {}, how, level)

    # -- label texts: a manifest's label column, a VOC object's name ----------------------

    def label_of(self, text: str) -> tuple[int, str]:
        """(index, name) for a label written as text; ``InputError`` saying why it is none."""
        classes, space = self.classes, self.space
        if classes is not None and text in classes.entries:
            return classes.entries[text]
        if text in self.absent:
            raise InputError(self.absent[text])
        index = _whole_number(text)
        if index is not None:
            return index, (classes.names().get(index, text) if classes else text)
        if space is not None and space.wnids is not None and is_wnid(text):
            found = space.wnid_index(text)
            if found is None:
                raise InputError(f"label {text!r} is a wnid that is not one of the classes of {space.describe()}")
            return found, space.names[found]
        wnids = " nor an ImageNet wnid of the model" if space is not None and space.wnids is not None else ""
        raise InputError(f"label {text!r} is neither an integer nor in the classes file{wnids}")

    # -- the range rule --------------------------------------------------------------------

    def check(self, records: Iterable[_Labelled]) -> None:
        """Refuse labels none of which is a class of the model; warn about those outside it."""
        space = self.space
        if space is None:
            return
        counts = Counter(r.label for r in records if r.label is not None)
        outside = sorted(label for label in counts if not 0 <= label < space.num_classes)
        if not outside:
            return
        classes = f"its classes 0..{space.num_classes - 1}"
        if len(outside) == len(counts):
            raise InputError(
                f"no label fits {space.describe()}: labels {_examples(outside)} are outside {classes}; "
                "check --classes or the class folder names"
            )
        images = sum(counts[label] for label in outside)
        log.warning(
            "labels %s (%d of %d labelled images) are outside the classes of %s (0..%d): those images "
            "count as wrong answers (docs/protocols.md section 3.2)",
            _examples(outside), images, sum(counts.values()), space.describe(), space.num_classes - 1,
        )


def _whole_number(text: str) -> int | None:
    """``"3"`` and ``"3.0"`` -> 3; None for text that is not a number; ``InputError`` for a
    number that is not whole (``"3.7"``, ``"nan"``)."""
    stripped = text.strip()
    if re.fullmatch(r"[+-]?[0-9]+", stripped):
        return int(stripped)
    try:
        value = float(stripped)
    except ValueError:
        return None
    if not math.isfinite(value) or value != int(value):
        raise InputError(f"label {text!r} is not a whole number")
    return int(value)
