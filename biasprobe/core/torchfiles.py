"""Why ``torch.load`` refused a file, in plain words (weights files and world checkpoints).

``torch.load`` reports a text file as ``KeyError: 101``, an empty file as an ``EOFError`` with
no message and a truncated one as an internal zip error. ``load_problem`` looks at the file's
first bytes and at the exception and says what the file is instead. No torch import here:
the caller has already called ``torch.load``.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["load_problem"]

def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\t\r\n" for ch in text)


def load_problem(
    path: Path,
    exc: BaseException,
    *,
    what: str = "a PyTorch weights file (a state_dict saved with torch.save)",
    hint: str = "save the state_dict alone with torch.save(model.state_dict(), FILE)",
) -> str:
    """Why ``path`` could not be loaded, to follow 'it': e.g. 'is a text file beginning ...';
    ``what`` names the kind of file expected and ``hint`` how to make one."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError as err:
        return f"cannot be read ({err.strerror or type(err).__name__})"
    message = str(exc)
    if not head:
        return f"is empty (0 bytes), not {what}"
    found = re.search(r"GLOBAL ([\w.]+)", message) if "Weights only load failed" in message else None
    if found:  # a real torch file holding more than tensors
        return (f"holds Python objects that are not tensors ({found.group(1)}); biasprobe loads only tensors "
                f"(weights_only=True) for safety: {hint}")
    if head.startswith(b"PK\x03\x04"):  # torch.save's zip format
        return "is a damaged PyTorch file (its zip archive cannot be read: truncated or copied incompletely)"
    if head[:1] == b"\x80":  # a pickle, not torch.save's format
        return f"is a Python pickle, not {what}; {hint}"
    if _looks_like_text(head):
        first = head.decode("utf-8").strip().splitlines()[0][:40] if head.strip() else ""
        return f"is a text file beginning {first!r}, not {what}"
    return f"is not {what} (its first bytes are {head[:8].hex(' ')})"
