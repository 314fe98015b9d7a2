"""Whether a modified migration file still means the same code.

Projects apply a licence header or a formatter (black, ``ruff format``) to hundreds of migrations
at once; git then reports every one of them as modified. :func:`equivalent` tells such edits apart
from real changes by comparing the two sources' syntax trees after removing what cannot change how
the migration behaves:

- comments, blank lines, line breaks, indentation, parentheses, trailing commas, quote style,
  string prefixes (``u"..."``), implicit concatenation: none of them reach the tree;
- docstrings: the first statement of a module, class or function body when it is a string
  literal; a body that held nothing else counts as ``pass``;
- type annotations *that Python never evaluates*: every annotation in a module with
  ``from __future__ import annotations``, and variable annotations inside functions. An annotated
  assignment then counts as a plain one; a bare module- or class-level ``x: int`` is dropped.
  A bare ``x: int`` inside a function still makes ``x`` local to it, so it stays, without its
  annotation;
- ``from __future__ import annotations`` itself, which only changes when annotations are
  evaluated.

Annotations that *are* evaluated stay significant. Without the future import (Python 3.10 to 3.13)
argument and return annotations are evaluated when the ``def`` runs, and module- and class-level
variable annotations when the statement runs; an annotation naming something imported only under
``if TYPE_CHECKING:`` then fails with ``NameError`` as the migration is imported. So adding
annotations together with the future import is equivalent, adding them without it is not, and
neither is removing the future import from a file whose annotations it kept from being evaluated.

Everything else is significant, conservatively: names, values, the order of statements and
operations, imports and their order, decorators, ``if TYPE_CHECKING:`` blocks, ``pass`` and
``...``. A source that does not compile is never equivalent to anything: a syntax error is a real
change. Each side is parsed once; the tree is also compiled (no second parse) so that errors the
parser lets through, such as a misplaced future import or ``return`` outside a function, count too.
"""

from __future__ import annotations

import ast

__all__ = ["equivalent", "normalised_dump"]

# The errors compiling a source string can raise: ValueError for NUL bytes before Python 3.12,
# RecursionError for sources nested too deeply.
_INVALID = (SyntaxError, ValueError, RecursionError)


def equivalent(old_source: str, new_source: str) -> bool:
    """True when both sources compile and mean the same code (see the module's docstring)."""
    try:
        return normalised_dump(old_source) == normalised_dump(new_source)
    except _INVALID:
        return False


def normalised_dump(source: str) -> str:
    """The canonical form :func:`equivalent` compares: the normalised tree, without positions.

    Raises :class:`SyntaxError` (or :class:`ValueError`) when ``source`` does not compile.
    """
    # A file may start with a UTF-8 byte order mark; Python ignores it when importing the file.
    tree = ast.parse(source.removeprefix("\ufeff"), type_comments=False)
    # Compile the tree rather than the text: no second parse. dont_inherit keeps this module's own
    # future import out of it.
    compile(tree, "<migration>", "exec", dont_inherit=True)
    lazy = _has_future_annotations(tree)
    normalised = _Normaliser(lazy_annotations=lazy).visit(tree)
    return ast.dump(normalised, annotate_fields=True, include_attributes=False)


def _has_future_annotations(tree: ast.Module) -> bool:
    # The tree compiled, so any future import is where Python honours it.
    return any(
        isinstance(statement, ast.ImportFrom)
        and statement.module == "__future__"
        and statement.level == 0
        and any(alias.name == "annotations" for alias in statement.names)
        for statement in tree.body
    )


def _without_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        return body[1:]
    return body


def _strip_arguments(arguments: ast.arguments) -> None:
    for argument in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs):
        argument.annotation = None
    if arguments.vararg is not None:
        arguments.vararg.annotation = None
    if arguments.kwarg is not None:
        arguments.kwarg.annotation = None


class _Normaliser(ast.NodeTransformer):
    """Rewrites a parsed module, in place, into the form two equivalent sources share."""

    def __init__(self, *, lazy_annotations: bool) -> None:
        # True when the module imports ``annotations`` from __future__: no annotation is evaluated.
        self._lazy_annotations = lazy_annotations
        # True while visiting statements that run in a function's scope (not a nested class's).
        self._in_function = False

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        # A block left with no statement (it only held a docstring or dropped annotations) is
        # ``pass``; a module may be empty.
        body = getattr(node, "body", None)
        if isinstance(body, list) and not body and not isinstance(node, ast.Module):
            body.append(ast.Pass())
        return node

    def visit_Module(self, node: ast.Module) -> ast.AST:
        node.body = _without_docstring(node.body)
        return self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.body = _without_docstring(node.body)
        return self._visit_scope(node, in_function=False)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return self._visit_function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        return self._visit_function(node)

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        node.body = _without_docstring(node.body)
        if self._lazy_annotations:
            _strip_arguments(node.args)
            node.returns = None
        return self._visit_scope(node, in_function=True)

    def _visit_scope(self, node: ast.AST, *, in_function: bool) -> ast.AST:
        # Decorators, bases and defaults run in the enclosing scope, but they hold no statements:
        # only statements (annotated assignments) look at the flag.
        outer, self._in_function = self._in_function, in_function
        try:
            return self.generic_visit(node)
        finally:
            self._in_function = outer

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST | None:
        self.generic_visit(node)
        if not (self._lazy_annotations or self._in_function):
            return node  # The annotation is evaluated when the statement runs.
        if node.value is not None:
            assign = ast.Assign(targets=[node.target], value=node.value, type_comment=None)
            return ast.copy_location(assign, node)
        if self._in_function:
            # ``x: int`` alone still makes ``x`` a local of the function: keep it, unannotated.
            node.annotation = ast.Constant(value=Ellipsis)
            return node
        return None  # Only fills ``__annotations__``, which migrations do not read.

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST | None:
        if node.module == "__future__" and node.level == 0:
            node.names = [
                alias
                for alias in node.names
                if not (alias.name == "annotations" and alias.asname is None)
            ]
            if not node.names:
                return None
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        node.kind = None  # ``u"..."`` is ``"..."``.
        return node
