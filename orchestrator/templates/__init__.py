"""Templates: Jinja2 in a sandbox, compiled once at plan time, rendered per item at run time.

A string that is exactly one ``{{ expr }}`` renders to the expression's native value (a list stays a
list); any other string with ``{{`` renders to text. Unknown names are errors, never empty strings.
References to ``steps.<id>`` are found in the syntax tree, so they become dependencies.

Jinja2 itself is imported by the first template that needs its parser or its renderer (see
`fast`), not by importing this package.

Modules: `environment` (the sandboxed Jinja2 environment), `compile` (one template: parse, analyse,
render), `fast` (the plain-lookup render path), `tree` (compiled parameter values), `unknown`
(dry-run placeholders). Import from this package, not from them.
"""

from orchestrator.templates.compile import (
    Template,
    TemplateSyntax,
    compile_template,
    global_names,
    is_template,
)
from orchestrator.templates.tree import Deferred, Tree, compile_tree
from orchestrator.templates.unknown import Unknown, contains_unknown

__all__ = [
    "Deferred",
    "Template",
    "TemplateSyntax",
    "Tree",
    "Unknown",
    "compile_template",
    "compile_tree",
    "contains_unknown",
    "global_names",
    "is_template",
]
