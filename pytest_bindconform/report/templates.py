"""The Jinja2 environment of the HTML reports: templates ship as package data.

Autoescaping is on for every template: any text from a case file or a host
(a suite title may hold '<script>') is escaped unless the Python side marked
it as markup on purpose (Markup), which only the caller's `lead` fragment and
the host page's body are.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

if TYPE_CHECKING:
    import jinja2


@cache
def environment() -> jinja2.Environment:
    """Imported when an HTML report is first rendered: most processes of a run (each xdist
    worker) render none, and jinja2's import costs each of them about 0.04 s."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pytest_bindconform", "report/templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    return env


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


def macros(name: str) -> Any:
    """A template's macros, callable from Python (each returns autoescaped Markup)."""
    return environment().get_template(name).module


def markup(fragment: str) -> Markup:
    """An HTML fragment the caller already escaped (the `lead` of a report)."""
    return Markup(fragment)
