"""A small JSON Schema draft-04 compiler: the runtime-spec's schemas become plain Python code.

jsonschema costs ~100-200 ms to import and several more to build a validator, which is most of
`pyoci run`.  This module turns pyoci/schema/config-schema.json and every file it $refs into a
module of ordinary functions (pyoci/schema_fast.py, checked in) whose one job is a boolean: is
the document valid?  config.py asks it first and only when it says no does it import jsonschema
to find and word the error, so messages are unchanged.

The generated code must never accept what jsonschema's Draft4Validator rejects, so it copies
jsonschema's semantics keyword by keyword (noted at each one), checks "integer" and "number"
by exact type (stricter than jsonschema for int/float subclasses, which json never produces:
a stricter answer only costs a fallback to jsonschema), turns a $ref that cannot be resolved
into "invalid" (jsonschema raises there, and will again on the fallback), and refuses to
compile any keyword it does not implement rather than ignore it.

Regenerate after changing pyoci/schema/*.json (tests/unit/test_fast_schema.py checks that the
checked-in module is current):

    python -m pyoci.schema_compiler            # writes pyoci/schema_fast.py
    python -m pyoci.schema_compiler --check    # exit status 1 if it is stale
"""

import json
import pathlib
import sys
import urllib.parse
from typing import Any

SCHEMA_DIR = pathlib.Path(__file__).parent / "schema"
OUTPUT = pathlib.Path(__file__).parent / "schema_fast.py"

# Keywords that do not constrain an instance (jsonschema has no validator for them), and
# format, which Draft4Validator only checks when given a format_checker (config.py gives none).
ANNOTATIONS = frozenset({"$schema", "description", "title", "default", "definitions", "format"})
OBJECT_KEYWORDS = frozenset(
    {"properties", "patternProperties", "additionalProperties", "required",
     "minProperties", "maxProperties"})
ARRAY_KEYWORDS = frozenset({"items", "additionalItems", "minItems", "maxItems"})
STRING_KEYWORDS = frozenset({"pattern", "minLength", "maxLength"})
NUMBER_KEYWORDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
COMBINATORS = frozenset({"allOf", "anyOf", "oneOf", "not"})
SUPPORTED = (ANNOTATIONS | OBJECT_KEYWORDS | ARRAY_KEYWORDS | STRING_KEYWORDS | NUMBER_KEYWORDS
             | COMBINATORS | {"type", "enum", "$ref", "id"})

# A value of the JSON type is exactly this (jsonschema's type checks are isinstance-based
# and bool-aware; for dict/list/str/bool they are identical, for integer/number stricter).
TYPE_TESTS = {
    "object": "isinstance({v}, dict)",
    "array": "isinstance({v}, list)",
    "string": "isinstance({v}, str)",
    "boolean": "isinstance({v}, bool)",
    "null": "{v} is None",
    "integer": "type({v}) is int",
    "number": "(type({v}) is int or type({v}) is float)",
}
NOT_TYPE_TESTS = {
    "object": "not isinstance({v}, dict)",
    "array": "not isinstance({v}, list)",
    "string": "not isinstance({v}, str)",
    "boolean": "not isinstance({v}, bool)",
    "null": "{v} is not None",
    "integer": "type({v}) is not int",
    "number": "type({v}) is not int and type({v}) is not float",
}
# A keyword of this family applies when jsonschema's is_type says so: these tests must be as
# loose as jsonschema's (a keyword skipped that jsonschema applies could accept a bad value).
FAMILY_TESTS = {
    "object": "isinstance({v}, dict)",
    "array": "isinstance({v}, list)",
    "string": "isinstance({v}, str)",
}


# Patterns compile on first use: most configs exercise one or two of them. The ones that
# everyday configs do exercise (rlimits, annotations, device types, cpusets) have a plain
# Python equivalent, used for strings: `re` costs ~4 ms to import, more to compile.
SEARCHER = '''def _searcher(pattern, plain=None):
    """re.search(pattern, string), as jsonschema calls it: for a string, ``plain`` (the
    same answer without re) if given; else re, imported and compiled on first use."""
    search = None

    def searcher(string):
        nonlocal search
        if plain is not None and isinstance(string, str):
            return plain(string)
        if search is None:
            import re

            search = re.compile(pattern).search
        return search(string)

    return searcher


def _trim(string):
    """The string whose end ``$`` matches: it also matches before one final newline."""
    return string[:-1] if string.endswith("\\n") else string


def _run(prefix, chars, least):
    """re.search's answer for ``^prefix[chars]{least,}$`` (chars without a newline)."""
    def test(string):
        rest = _trim(string)
        if not rest.startswith(prefix):
            return False
        rest = rest[len(prefix):]
        return len(rest) >= least and not rest.strip(chars)

    return test


'''

# Python expressions equal to re.search(pattern, s) for every str s (_trim and _run are in
# SEARCHER; tests/unit/test_fast_schema.py checks each against re).
PLAIN_PATTERNS = {
    "^RLIMIT_[A-Z]+$": "_run('RLIMIT_', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 1)",
    "^[0-9, -]*$": "_run('', '0123456789, -', 0)",
    "^[cbup]$": "lambda s: _trim(s) in ('b', 'c', 'p', 'u')",
    ".{1,}": "lambda s: bool(s.strip('\\n'))",  # any character but a newline
}


class CompileError(Exception):
    """The schema uses something this compiler does not implement."""


class Compiler:
    """Compile one root schema (and what it references) into a module's source text."""

    def __init__(self, schema_dir: pathlib.Path = SCHEMA_DIR, root: str = "config-schema.json"):
        # config.py's jsonschema path registers every file by its file:// URI and gives the
        # root that URI as its id; the fast path must resolve $refs the same way.
        self.schema_dir = schema_dir
        self.documents = {
            path.name: json.loads(path.read_text()) for path in sorted(schema_dir.glob("*.json"))
        }
        self.root = root
        self.functions: dict[tuple[str, str], str] = {}  # (document, pointer) -> name
        self.queue: list[tuple[str, Any, str]] = []  # (name, schema, document) to emit
        self.bodies: list[str] = []
        self.constants: dict[tuple[str, Any], str] = {}
        self.constant_lines: list[str] = []
        self.used_documents: set[str] = set()
        self.serial = 0
        self.counter = 0

    # ---- constants -------------------------------------------------------------------------

    def _constant(self, kind: str, value: Any) -> str:
        key = (kind, value)
        if key not in self.constants:
            name = f"_{kind.upper()}{len(self.constants)}"
            self.constants[key] = name
            if kind == "re" and value in PLAIN_PATTERNS:
                self.constant_lines.append(
                    f"{name} = _searcher({value!r}, {PLAIN_PATTERNS[value]})")
            elif kind == "re":
                self.constant_lines.append(f"{name} = _searcher({value!r})")
            else:  # a frozenset of strings, one a line to stay within the line length
                items = "".join(f"    {item!r},\n" for item in sorted(value))
                self.constant_lines.append(f"{name} = frozenset((\n{items}))")
        return self.constants[key]

    # ---- $ref resolution -------------------------------------------------------------------

    def _resolve(self, ref: str, document: str) -> tuple[str, str, Any] | None:
        """(document, pointer, schema) a $ref names, or None when jsonschema cannot resolve it."""
        # referencing: urljoin the $ref onto the current base URI, look the document up in
        # the registry by URI (no retrieval), then the fragment as a JSON pointer.
        url, _, fragment = urllib.parse.urljoin(self._uri(document), ref).partition("#")
        target = next((name for name in self.documents if self._uri(name) == url), None)
        if target is None:
            return None
        fragment = urllib.parse.unquote(fragment)
        if fragment and not fragment.startswith("/"):
            # A plain-name anchor: draft 4 declares those with a nested "id", which the
            # compiler refuses, so there are none and referencing fails to resolve it.
            return None
        schema = self.documents[target]
        for token in fragment.split("/")[1:]:
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(schema, dict) and token in schema:
                schema = schema[token]
            elif isinstance(schema, list) and token.isdigit() and int(token) < len(schema):
                schema = schema[int(token)]
            else:
                return None
        return target, fragment, schema

    def _uri(self, document: str) -> str:
        return (self.schema_dir / document).absolute().as_uri()

    def follow(self, ref: str, document: str) -> tuple[str, str, Any] | str:
        """Follow a $ref, and the $refs it leads to (draft 4 ignores a $ref's siblings), to
        (document, pointer, schema) of a real schema, or to the first unresolvable $ref."""
        seen = set()
        while True:
            resolved = self._resolve(ref, document)
            if resolved is None:
                return ref
            document, pointer, schema = resolved
            if (document, pointer) in seen:
                raise CompileError(f"$ref loop through {document}#{pointer}")
            seen.add((document, pointer))
            if not isinstance(schema, dict) or schema.get("$ref") is None:
                self.used_documents.add(document)
                return document, pointer, schema
            ref = schema["$ref"]

    def _function(self, schema: Any, document: str, key: tuple[str, str] | None = None) -> str:
        """Name of a function validating schema; emitted once per $ref target."""
        if key is not None and key in self.functions:
            return self.functions[key]
        self.serial += 1
        name = f"_s{self.serial}"
        if key is not None:
            name = f"{name}_{_identifier(key)}"
            self.functions[key] = name
        self.queue.append((name, schema, document))
        return name

    # ---- code generation -------------------------------------------------------------------

    def _is_leaf(self, schema: Any) -> bool:
        """True if schema has no subschemas, so it is cheap to inline wherever it is used."""
        return isinstance(schema, dict) and schema.get("$ref") is None and not any(
            k in schema for k in ("properties", "patternProperties", "additionalProperties",
                                  "items", "additionalItems", *COMBINATORS))

    def _emit(self, schema: Any, document: str, v: str, out: list[str], depth: int) -> None:
        """Append statements that `return False` unless v is valid under schema."""
        pad = "    " * depth
        if schema is True or schema == {}:
            return
        if not isinstance(schema, dict):
            raise CompileError(f"not a draft-04 schema: {schema!r}")
        unknown = set(schema) - SUPPORTED
        if unknown:
            raise CompileError(f"unsupported keywords {sorted(unknown)} in {document}")
        if "id" in schema and isinstance(schema["id"], str):
            raise CompileError(f"nested id {schema['id']!r} in {document} is not supported")

        ref = schema.get("$ref")
        if ref is not None:  # jsonschema's ignore_ref_siblings: the $ref alone applies
            followed = self.follow(ref, document)
            if isinstance(followed, str):
                name = self._unresolvable(followed)
            elif self._is_leaf(followed[2]):  # cheap: inline it
                self._emit(followed[2], followed[0], v, out, depth)
                return
            else:
                name = self._function(followed[2], followed[0], followed[:2])
            out.append(f"{pad}if not {name}({v}):")
            out.append(f"{pad}    return False")
            return

        # type: jsonschema's type keyword accepts a name or a list of names.
        types = schema.get("type")
        known = None
        if types is not None:
            names = [types] if isinstance(types, str) else list(types)
            if not names or any(n not in TYPE_TESTS for n in names):
                raise CompileError(f"unsupported type {types!r} in {document}")
            if len(names) == 1:
                out.append(f"{pad}if {NOT_TYPE_TESTS[names[0]].format(v=v)}:")
            else:
                test = " or ".join(TYPE_TESTS[n].format(v=v) for n in names)
                out.append(f"{pad}if not ({test}):")
            out.append(f"{pad}    return False")
            if len(names) == 1:
                known = names[0]

        # enum: jsonschema compares with _utils.equal; against strings that is plain ==.
        if "enum" in schema:
            values = schema["enum"]
            if not values or not all(isinstance(x, str) for x in values):
                raise CompileError(f"only enums of strings are supported, not {values!r}")
            name = self._constant("enum", frozenset(values))
            if known == "string":
                out.append(f"{pad}if {v} not in {name}:")
            else:
                out.append(f"{pad}if not isinstance({v}, str) or {v} not in {name}:")
            out.append(f"{pad}    return False")

        self._emit_family(schema, document, v, out, depth, known, "object", OBJECT_KEYWORDS,
                          self._emit_object)
        self._emit_family(schema, document, v, out, depth, known, "array", ARRAY_KEYWORDS,
                          self._emit_array)
        self._emit_family(schema, document, v, out, depth, known, "string", STRING_KEYWORDS,
                          self._emit_string)
        self._emit_number(schema, v, out, depth, known)

        for sub in schema.get("allOf", ()):
            self._emit(sub, document, v, out, depth)
        if "anyOf" in schema:
            subs = schema["anyOf"]
            if len(subs) == 1:  # one alternative: it must hold
                self._emit(subs[0], document, v, out, depth)
            else:
                calls = " or ".join(f"{self._function(s, document)}({v})" for s in subs)
                out.append(f"{pad}if not ({calls}):")
                out.append(f"{pad}    return False")
        if "oneOf" in schema:
            calls = " + ".join(f"{self._function(s, document)}({v})" for s in schema["oneOf"])
            out.append(f"{pad}if ({calls}) != 1:")
            out.append(f"{pad}    return False")
        if "not" in schema:
            out.append(f"{pad}if {self._function(schema['not'], document)}({v}):")
            out.append(f"{pad}    return False")

    def _emit_family(self, schema, document, v, out, depth, known, family, keywords, emit):
        if not keywords & schema.keys():
            return
        if known is not None and known != family:
            return  # the type check already rejected every value these keywords apply to
        if known == family:
            emit(schema, document, v, out, depth)
            return
        inner: list[str] = []
        emit(schema, document, v, inner, depth + 1)
        if inner:
            out.append("    " * depth + f"if {FAMILY_TESTS[family].format(v=v)}:")
            out.extend(inner)

    def _var(self, v: str) -> str:
        self.counter += 1
        return f"v{self.counter}"

    def _emit_object(self, schema, document, v, out, depth):
        pad = "    " * depth
        # required: each name must be a key (jsonschema: `property not in instance`).
        required = schema.get("required", [])
        if required:
            test = " or ".join(f"{name!r} not in {v}" for name in required)
            out.append(f"{pad}if {test}:")
            out.append(f"{pad}    return False")
        for keyword, op in (("minProperties", "<"), ("maxProperties", ">")):
            if keyword in schema:
                out.append(f"{pad}if len({v}) {op} {schema[keyword]!r}:")
                out.append(f"{pad}    return False")
        # properties: each listed key present is validated against its schema.
        properties = schema.get("properties", {})
        for name, sub in properties.items():
            w = self._var(v)
            inner: list[str] = []
            self._emit(sub, document, w, inner, depth + 1)
            if inner:
                out.append(f"{pad}if {name!r} in {v}:")
                out.append(f"{pad}    {w} = {v}[{name!r}]")
                out.extend(inner)
        # patternProperties: every key re.search-matching a pattern is validated.
        for pattern, sub in schema.get("patternProperties", {}).items():
            k, w = self._var(v), self._var(v)
            inner = []
            self._emit(sub, document, w, inner, depth + 2)
            if inner:
                search = self._constant("re", pattern)
                out.append(f"{pad}for {k}, {w} in {v}.items():")
                out.append(f"{pad}    if {search}({k}):")
                out.extend(inner)
        # additionalProperties: keys neither listed in properties nor matching the patterns
        # (jsonschema joins the patterns with "|" into one regex) are extras.
        if "additionalProperties" in schema:
            extra = schema["additionalProperties"]
            if extra is True:
                return
            k, w = self._var(v), self._var(v)
            tests = []
            if properties:
                tests.append(f"{k} not in {self._constant('keys', frozenset(properties))}")
            patterns = "|".join(schema.get("patternProperties", {}))
            if patterns:
                tests.append(f"not {self._constant('re', patterns)}({k})")
            test = " and ".join(tests)
            if extra is False:
                if not test:  # every key is an extra
                    out.append(f"{pad}if {v}:")
                    out.append(f"{pad}    return False")
                else:
                    out.append(f"{pad}for {k} in {v}:")
                    out.append(f"{pad}    if {test}:")
                    out.append(f"{pad}        return False")
            elif isinstance(extra, dict):
                inner = []
                self._emit(extra, document, w, inner, depth + 1 + bool(test))
                if inner and not test:  # every value is an extra
                    out.append(f"{pad}for {w} in {v}.values():")
                    out.extend(inner)
                elif inner:
                    out.append(f"{pad}for {k}, {w} in {v}.items():")
                    out.append(f"{pad}    if {test}:")
                    out.extend(inner)
            else:
                raise CompileError(f"additionalProperties {extra!r} in {document}")

    def _emit_array(self, schema, document, v, out, depth):
        pad = "    " * depth
        for keyword, op in (("minItems", "<"), ("maxItems", ">")):
            if keyword in schema:
                out.append(f"{pad}if len({v}) {op} {schema[keyword]!r}:")
                out.append(f"{pad}    return False")
        items = schema.get("items", {})
        if isinstance(items, dict):  # one schema for every element
            w = self._var(v)
            inner: list[str] = []
            self._emit(items, document, w, inner, depth + 1)
            if inner:
                out.append(f"{pad}for {w} in {v}:")
                out.extend(inner)
            return  # jsonschema ignores additionalItems next to a schema-valued items
        # items as a list: element i against schema i, as far as both go (jsonschema zips).
        for index, sub in enumerate(items):
            w = self._var(v)
            inner = []
            self._emit(sub, document, w, inner, depth + 1)
            if inner:
                out.append(f"{pad}if len({v}) > {index}:")
                out.append(f"{pad}    {w} = {v}[{index}]")
                out.extend(inner)
        extra = schema.get("additionalItems", True)
        if extra is False:
            out.append(f"{pad}if len({v}) > {len(items)}:")
            out.append(f"{pad}    return False")
        elif isinstance(extra, dict):
            w = self._var(v)
            inner = []
            self._emit(extra, document, w, inner, depth + 1)
            if inner:
                out.append(f"{pad}for {w} in {v}[{len(items)}:]:")
                out.extend(inner)
        elif extra is not True:
            raise CompileError(f"additionalItems {extra!r} in {document}")

    def _emit_string(self, schema, document, v, out, depth):
        pad = "    " * depth
        # minLength/maxLength count code points, as len() does.
        for keyword, op in (("minLength", "<"), ("maxLength", ">")):
            if keyword in schema:
                out.append(f"{pad}if len({v}) {op} {schema[keyword]!r}:")
                out.append(f"{pad}    return False")
        if "pattern" in schema:  # jsonschema: re.search(pattern, instance)
            out.append(f"{pad}if not {self._constant('re', schema['pattern'])}({v}):")
            out.append(f"{pad}    return False")

    def _emit_number(self, schema, v, out, depth, known):
        if not NUMBER_KEYWORDS & schema.keys():
            return
        if known not in ("integer", "number"):
            # jsonschema applies these to any numbers.Number; without the type pinned down the
            # exact-type guards below would skip, say, a Decimal that jsonschema checks.
            raise CompileError("minimum/maximum need a type of integer or number beside them")
        pad = "    " * depth
        # jsonschema's minimum_draft3_draft4 / maximum_draft3_draft4 comparisons, verbatim.
        tests = []
        if "minimum" in schema:
            op = "<=" if schema.get("exclusiveMinimum", False) else "<"
            tests.append(f"{v} {op} {schema['minimum']!r}")
        if "maximum" in schema:
            op = ">=" if schema.get("exclusiveMaximum", False) else ">"
            tests.append(f"{v} {op} {schema['maximum']!r}")
        if tests:
            out.append(f"{pad}if {' or '.join(tests)}:")
            out.append(f"{pad}    return False")

    def _unresolvable(self, ref: str) -> str:
        key = ("unresolvable", ref)
        if key not in self.functions:
            self.serial += 1
            name = f"_unresolvable{self.serial}"
            self.functions[key] = name
            self.bodies.append(
                f"def {name}(v):\n"
                f"    # jsonschema raises resolving {ref!r}: leave the answer to it.\n"
                f"    return False\n"
            )
        return self.functions[key]

    def _emit_function(self, name: str, schema: Any, document: str) -> None:
        self.counter = 0
        out: list[str] = []
        self._emit(schema, document, "v", out, 1)
        self.bodies.append(f"def {name}(v):\n" + "".join(line + "\n" for line in out)
                           + "    return True\n")

    def compile(self) -> str:
        """Source text of a module whose is_valid(instance) answers for the root schema."""
        self.counter = 0
        out: list[str] = []
        root = {k: v for k, v in self.documents[self.root].items() if k != "id"}
        self.used_documents.add(self.root)
        self._emit(root, self.root, "instance", out, 1)
        while self.queue:
            self._emit_function(*self.queue.pop(0))
        header = (
            '"""Generated by pyoci/schema_compiler.py from pyoci/schema/'
            f'{self.root}; do not edit.\n'
            "\n"
            "Regenerate with `python -m pyoci.schema_compiler`.  Sources:\n"
            + "".join(f"    {name}\n" for name in sorted(self.used_documents))
            + '"""\n\n\n'
            + SEARCHER
        )
        is_valid = (
            "def is_valid(instance):\n"
            '    """True if instance (as json.loads returns it) is valid under the schema; a\n'
            "    False may be a false alarm for exotic Python types, never a miss for JSON.\"\"\"\n"
            + "".join(line + "\n" for line in out)
            + "    return True\n"
        )
        return (header + "\n".join(self.constant_lines) + "\n\n\n"
                + "\n\n".join([is_valid, *self.bodies]))


def _identifier(key: tuple[str, str]) -> str:
    document, pointer = key
    text = pointer.rsplit("/", 1)[-1] or document.removesuffix(".json")
    return "".join(c if c.isalnum() else "_" for c in text)


def generate() -> str:
    return Compiler().compile()


def main(argv: list[str]) -> int:
    source = generate()
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text() != source:
            print(f"{OUTPUT} is stale: run python -m pyoci.schema_compiler", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(source)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
