"""Read the CLI's multi-document YAML input within fixed limits.

Every limit is checked before the documents are built into Python objects,
so hostile input costs no more than its bounded size: a 465-byte "billion
laughs" alias bomb is a few dozen shared nodes until something walks it, and
walking it (defaulting, schema checks, CEL) took gigabytes before these limits.
"""

from __future__ import annotations

import codecs
import dataclasses
from typing import Any

import yaml

MAX_INPUT_BYTES = 10 * 1024 * 1024
MAX_DOCUMENTS = 1000
# Aliases are fine while the input, written out without them, would still fit
# the input limit: anything larger could not have been sent without aliases.
MAX_EXPANDED_SIZE = MAX_INPUT_BYTES

# libyaml's parser is ~10x faster than the pure-Python one and parses the same.
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class InputError(ValueError):
    """The input is refused; `index` is the document at fault (1-based), if one is."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


@dataclasses.dataclass(frozen=True)
class Document:
    index: int  # 1-based position in the stream, empty documents included
    value: Any


def decode(data: bytes) -> str:
    """Text of the input: UTF-8 (with or without BOM), or UTF-16 with a BOM, as YAML allows."""
    encoding = "utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not {exc.encoding.upper().removesuffix('-SIG')} text: byte 0x{data[exc.start]:02x} "
            f"at offset {exc.start} is invalid (is this a binary file?)"
        ) from None


_CHUNK = 64 * 1024


def read_limited(stream: Any) -> bytes:
    """All of a binary stream, refused once it passes MAX_INPUT_BYTES (never read further).

    Read in chunks: one read of the limit would allocate 10 MiB for any input.
    """
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_INPUT_BYTES:
        chunk: bytes = stream.read(min(_CHUNK, MAX_INPUT_BYTES + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    raise InputError(f"input is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB")


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """Size of `node` with every alias written out: scalar characters plus one per node.

    Memoised per node, so a shared subtree is walked once however often it is
    aliased: the cost is that of the input, not of its expansion.
    """
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise _Recursive(node)
    if isinstance(node, yaml.ScalarNode):
        size = 1 + len(node.value)
    else:
        open_nodes.add(key)
        children = node.value if isinstance(node, yaml.SequenceNode) else [
            child for pair in node.value for child in pair]
        size = 1 + sum(_expanded_size(child, sizes, open_nodes) for child in children)
        open_nodes.discard(key)
    sizes[key] = size
    return size


class _Recursive(Exception):
    def __init__(self, node: yaml.Node) -> None:
        super().__init__()
        self.node = node


def _line(node: yaml.Node) -> str:
    return f" (line {node.start_mark.line + 1}, column {node.start_mark.column + 1})"


def check_expansion(node: yaml.Node, budget: int, index: int) -> int:
    """Expanded size of document `index`; InputError past `budget` or if recursive."""
    try:
        size = _expanded_size(node, {}, set())
    except _Recursive as exc:
        raise InputError(f"a YAML alias refers to its own ancestor{_line(exc.node)}", index) from None
    if size > budget:
        raise InputError(
            f"YAML aliases expand the input beyond {MAX_EXPANDED_SIZE // (1024 * 1024)} MiB", index)
    return size


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"not valid YAML: {problem}{where}"


def _nodes(text: str) -> list[tuple[int, yaml.Node]]:
    """(index, node) of every non-empty document, within the count and expansion limits."""
    loader = SAFE_LOADER(text)
    nodes: list[tuple[int, yaml.Node]] = []
    budget = MAX_EXPANDED_SIZE
    try:
        index = 0
        while loader.check_node():
            index += 1
            node = loader.get_node()
            if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
                continue
            if len(nodes) == MAX_DOCUMENTS:
                raise InputError(f"more than {MAX_DOCUMENTS} documents")
            budget -= check_expansion(node, budget, index)
            nodes.append((index, node))
    except yaml.YAMLError as exc:
        raise InputError(_yaml_problem(exc)) from None
    finally:
        loader.dispose()
    return nodes


def load(data: bytes) -> list[Document]:
    """Every non-empty document of `data`, or InputError before any is built."""
    text = decode(data)
    nodes = _nodes(text)
    loader = SAFE_LOADER("")
    try:
        return [Document(index, loader.construct_document(node)) for index, node in nodes]
    except yaml.YAMLError as exc:  # e.g. an unhashable key, found only while building
        raise InputError(_yaml_problem(exc)) from None
    finally:
        loader.dispose()
