#!/usr/bin/env python3
"""Checks Floodwall's OpenAPI document and answers recorded against it.

    check-openapi.py DOC.json [METHOD PATH STATUS BODY.json]...

The document must be valid OpenAPI 3 (openapi-spec-validator), and each recorded body must
match the schema the document gives for that path, method and status (OpenAPI 3.0 schema
semantics, `nullable` included). Prints one line per check; exits 1 on the first mismatch.
"""
import json
import sys

from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate


def main(argv):
    doc = json.load(open(argv[1]))
    validate(doc)
    print(f"openapi: {argv[1]} is a valid OpenAPI {doc['openapi']} document "
          f"({len(doc['paths'])} paths, {len(doc['components']['schemas'])} schemas)")
    rest = argv[2:]
    if len(rest) % 4:
        sys.exit("arguments after the document come in fours: METHOD PATH STATUS BODY.json")
    for i in range(0, len(rest), 4):
        method, path, status, body_file = rest[i:i + 4]
        operation = doc["paths"].get(path, {}).get(method.lower())
        if operation is None:
            sys.exit(f"openapi: {method} {path} is not in the document")
        response = operation["responses"].get(status)
        if response is None:
            sys.exit(f"openapi: {method} {path} does not document status {status}")
        schema = response["content"]["application/json"]["schema"]
        wrapped = {"allOf": [schema], "components": doc["components"]}
        body = json.load(open(body_file))
        errors = sorted(OAS30Validator(wrapped).iter_errors(body), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            sys.exit(f"openapi: {method} {path} {status}: the answer does not match its schema "
                     f"at {'/'.join(map(str, e.path)) or '(root)'}: {e.message[:500]}")
        print(f"openapi: {method} {path} {status} matches its schema")


if __name__ == "__main__":
    main(sys.argv)
