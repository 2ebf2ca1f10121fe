"""Templates: Jinja2 in a sandbox, compiled once at plan time, rendered per item at run time.

A string that is exactly one ``{{ expr }}`` renders to the expression's native value (a list stays a
list); any other string with ``{{`` renders to text. Unknown names are errors, never empty strings.
References to ``steps.<id>`` are found in the syntax tree, so they become dependencies.

Modules: `environment` (the sandboxed Jinja2 environment), `compile` (one template: parse, analyse,
render), `fast` (the plain-lookup render path), `tree` (compiled parameter values), `unknown`
(dry-run placeholders). Import from this package, not from them.
"""

from orchestrator.templates.compile import Template, TemplateSyntax, compile_template, is_template
from orchestrator.templates.environment import GLOBAL_NAMES
from orchestrator.templates.tree import Deferred, Tree, compile_tree
from orchestrator.templates.unknown import Unknown, contains_unknown

__all__ = [
    "GLOBAL_NAMES",
    "Deferred",
    "Template",
    "TemplateSyntax",
    "Tree",
    "Unknown",
    "compile_template",
    "compile_tree",
    "contains_unknown",
    "is_template",
]
