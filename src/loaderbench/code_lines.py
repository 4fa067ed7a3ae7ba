"""Lines of user code: what a loader asks its user to write, counted the same way for every peer (image and sparse).

A line counts when it holds code: blank lines, comments and docstrings (of modules, classes and functions) do not.
"""

from __future__ import annotations

import ast
import inspect
import io
import textwrap
import tokenize
from collections.abc import Iterable
from typing import Any

_NOT_CODE = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING,
             tokenize.ENDMARKER}


def source_lines(source: str) -> int:
    """Lines of ``source`` (a module, class or function, dedented) that hold code."""
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in _NOT_CODE:
            lines.update(range(token.start[0], token.end[0] + 1))
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                lines.difference_update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return len(lines)


def object_lines(objects: Iterable[Any]) -> int:
    """Lines of code of every function, method or class in ``objects``, from their source."""
    return sum(source_lines(textwrap.dedent(inspect.getsource(obj))) for obj in objects)
