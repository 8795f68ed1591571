"""The findings rendered as Markdown (``results/findings.md``), rst (the report's front page)
and HTML (the report's findings page), from one list of sections, by the Jinja2 templates in
``templates/`` (Jinja2 ships with Snakemake). A section is a title, an optional table (the
answer's) and its sentences; inline code is written between backticks in the sentences and
becomes each format's own."""

from __future__ import annotations

import html as html_module
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import jinja2
from markupsafe import Markup

TEMPLATES = Path(__file__).with_name("templates")
_CODE = re.compile(r"`([^`]+)`")


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    title: str
    sentences: list[str] = field(default_factory=list)
    table: Table | None = None


def rst_inline(text: str) -> str:
    text = text.replace("*", r"\*").replace("|", r"\|")
    return _CODE.sub(lambda m: f"``{m.group(1)}``", text)


def html_inline(text: str) -> Markup:
    return Markup(_CODE.sub(lambda m: f"<code>{m.group(1)}</code>",
                            html_module.escape(text, quote=False)))


def md_cell(text: str) -> str:
    """A Markdown table cell: a pipe would end the cell."""
    return text.replace("|", r"\|")


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), trim_blocks=True,
                             lstrip_blocks=True,
                             autoescape=jinja2.select_autoescape(["html.j2"]),
                             undefined=jinja2.StrictUndefined)
    env.filters.update(rst_inline=rst_inline, html_inline=html_inline, md_cell=md_cell)
    return env


def markdown(sections: list[Section], title: str = "Findings", preamble: list[str] = ()) -> str:
    return _environment().get_template("findings.md.j2").render(
        sections=sections, title=title, preamble=list(preamble)).rstrip("\n") + "\n"


def rst(sections: list[Section]) -> str:
    """Findings as rst without section titles (so they can be included anywhere): a bold
    line per section, its table, then a bullet per sentence."""
    return _environment().get_template("findings.rst.j2").render(
        sections=sections).rstrip("\n") + "\n"


def html(sections: list[Section]) -> str:
    return _environment().get_template("findings.html.j2").render(sections=sections).strip()
