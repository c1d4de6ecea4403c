"""Render the HTML bias report: jinja2 with autoescape on, one self-contained file, written atomically."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

from biasprobe.core.io import atomic_write_bytes, to_jsonable
from biasprobe.report.context import build_context, build_supplement
from biasprobe.report.inputs import load_inputs
from biasprobe.report.provenance import summary_line

__all__ = ["Supplement", "render_html", "write_report"]

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Supplement:
    """A further image set for the same report, shown without an atypicality axis (for
    example real photos beside a synthetic world): its invariance files and image root."""

    title: str
    invariance_files: tuple[str | Path, ...]
    images_root: str | Path | None = None


def _pretty(value: object, indent: str = "") -> str:
    """JSON with nested objects indented and lists of plain values kept on one line."""
    value = to_jsonable(value)
    if isinstance(value, dict) and value:
        inner = indent + "  "
        items = [f"{inner}{json.dumps(k)}: {_pretty(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        inner = indent + "  "
        return "[\n" + ",\n".join(inner + _pretty(v, inner) for v in value) + f"\n{indent}]"
    return json.dumps(value, default=str)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pretty"] = _pretty
    env.filters["summary_line"] = summary_line
    return env


def _extra(sections: Mapping[str, str] | Sequence[tuple[str, str]] | None) -> list[tuple[str, list[str]]]:
    """(title, paragraphs). Plain text is escaped like every other string and split at blank
    lines; a ``markupsafe.Markup`` body is kept as one HTML block."""
    if not sections:
        return []
    items = sections.items() if isinstance(sections, Mapping) else sections
    out = []
    for title, body in items:
        paragraphs = [body] if hasattr(body, "__html__") else [p for p in str(body).split("\n\n") if p.strip()]
        out.append((str(title), paragraphs))
    return out


def render_html(context: dict) -> str:
    """The report's HTML from a context made by ``build_context``."""
    return _environment().get_template("report.html.j2").render(**context)


def write_report(
    scores: str | Path | None,
    invariance_files: Sequence[str | Path],
    *,
    out: str | Path,
    index: str | Path | None = None,
    boxes_train: str | Path | None = None,
    boxes_test: str | Path | None = None,
    title: str | None = None,
    extra_sections: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    images_root: str | Path | None = None,
    supplements: Sequence[Supplement] = (),
    positions: Sequence[str | Path] = (),
    seed: int = 0,
    command: list[str] | None = None,
    layers: Sequence[str | Path] = (),
    models: Sequence[str | Path] = (),
    models_note: str = "",
    factors: str | Path | None = None,
) -> Path:
    """Read the stage outputs, analyse them and write one self-contained HTML file to ``out``.

    ``extra_sections`` (title -> text, blank lines between paragraphs) are shown after the summary;
    ``supplements`` (further image sets, e.g. real photos) after the galleries; ``positions``
    (outputs of ``biasprobe positions``, baseline first) the maps over the frame; ``layers`` (outputs
    of 'biasprobe layers') feed the section on where in the network invariance is lost; ``models``
    (outputs of 'biasprobe invariance' of several models on the same images) the model comparison,
    ``models_note`` a line said first there (which images, which protocols and why); ``factors`` (a
    factor annotations file, or ``imagenet-x`` for the installed package's) the human factors section.
    """
    inputs = load_inputs(
        scores, list(invariance_files), index=index, boxes_train=boxes_train, boxes_test=boxes_test,
        images_root=images_root,
    )
    log.info("analysing %d invariance file(s)", len(inputs.invariance))
    context = build_context(inputs, title=title, seed=seed, command=command, layer_files=layers, factors=factors)
    context["extra_sections"] = _extra(extra_sections)
    if positions:
        from biasprobe.report.positions import positions_section

        context["positions"] = positions_section(positions, index=index, boxes_train=boxes_train, seed=seed)
    if models:
        from biasprobe.report.models import models_section

        context["models"] = models_section(models, seed=seed, note=models_note)
    context["supplements"] = []
    for sup in supplements:
        sup_inputs = load_inputs(None, list(sup.invariance_files), images_root=sup.images_root)
        block = build_supplement(sup_inputs, title=sup.title, seed=seed)
        context["supplements"].append(block)
        context["skipped"] = [*context["skipped"], *block["skipped"]]
        context["warnings"] = [*context["warnings"], *block["warnings"]]
        context["provenance"] = [*context["provenance"], *block["provenance"]]
    html = render_html(context)
    out = Path(out)
    atomic_write_bytes(out, html.encode("utf-8"))
    log.debug("wrote %s (%.1f MB)", out, len(html) / 1e6)
    return out
