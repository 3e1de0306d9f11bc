#!/usr/bin/env python3
"""Writes tests/github/openapi.json: the operations vss calls, cut from GitHub's published
REST API description (npm `@octokit/openapi`, `generated/api.github.com.deref.json`), with
each schema turned into plain JSON Schema (OpenAPI 3.0's `nullable` becomes a `null` type;
descriptions and examples dropped). The GitHub test server checks every request it gets,
and every answer it gives, against it.

    tests/github/openapi-subset.py            # fetches the package with npm
    tests/github/openapi-subset.py FILE.json  # or reads a description already on disk
"""
import json
import pathlib
import subprocess
import sys
import tarfile
import tempfile

VERSION = "23.0.2"
SCOPES = ["actions", "dependabot", "codespaces"]
PATHS = [
    "/repos/{owner}/{repo}",
    "/app/installations/{installation_id}/access_tokens",
    "/repos/{owner}/{repo}/dispatches",
    "/repos/{owner}/{repo}/environments",
    "/repos/{owner}/{repo}/environments/{environment_name}",
    "/repos/{owner}/{repo}/environments/{environment_name}/deployment-branch-policies",
    "/repos/{owner}/{repo}/environments/{environment_name}/deployment-branch-policies/{branch_policy_id}",
    "/users/{username}",
    "/orgs/{org}/teams/{team_slug}",
]
for base in ["/repos/{owner}/{repo}/%s/secrets" % s for s in SCOPES] + [
    "/repos/{owner}/{repo}/environments/{environment_name}/secrets"
] + ["/orgs/{org}/%s/secrets" % s for s in SCOPES]:
    PATHS += [base, base + "/public-key", base + "/{secret_name}"]
    if base.startswith("/orgs/"):
        PATHS.append(base + "/{secret_name}/repositories")
for base in [
    "/repos/{owner}/{repo}/actions/variables",
    "/repos/{owner}/{repo}/environments/{environment_name}/variables",
    "/orgs/{org}/actions/variables",
]:
    PATHS += [base, base + "/{name}"]

DROP = {"description", "example", "examples", "externalDocs", "title", "readOnly", "writeOnly", "deprecated", "x-github"}


def schema(node):
    """OpenAPI 3.0 schema -> JSON Schema."""
    if isinstance(node, list):
        return [schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: schema(v) for k, v in node.items() if k not in DROP and k != "nullable"}
    if node.get("nullable"):
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif "enum" in out:
            out["enum"] = out["enum"] + [None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def main():
    if len(sys.argv) > 1:
        description = json.loads(pathlib.Path(sys.argv[1]).read_text())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["npm", "pack", f"@octokit/openapi@{VERSION}", "--silent"], cwd=tmp, check=True)
            with tarfile.open(next(pathlib.Path(tmp).glob("*.tgz"))) as tar:
                member = tar.extractfile("package/generated/api.github.com.deref.json")
                description = json.load(member)
    out = {"source": f"@octokit/openapi {VERSION} generated/api.github.com.deref.json", "paths": {}}
    for path in PATHS:
        operations = description["paths"][path]
        cut = {}
        for method, op in operations.items():
            if method not in {"get", "put", "post", "patch", "delete"}:
                continue
            entry = {"operationId": op["operationId"], "parameters": [], "responses": {}}
            for param in op.get("parameters", []):
                entry["parameters"].append(
                    {"name": param["name"], "in": param["in"], "required": param.get("required", False),
                     "schema": schema(param.get("schema", {}))}
                )
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body is not None:
                entry["requestBody"] = {"required": op["requestBody"].get("required", False), "schema": schema(body)}
            for status, response in op.get("responses", {}).items():
                content = response.get("content", {}).get("application/json", {}).get("schema")
                entry["responses"][status] = schema(content) if content is not None else None
            cut[method] = entry
        out["paths"][path] = cut
    target = pathlib.Path(__file__).with_name("openapi.json")
    target.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {target} ({target.stat().st_size} bytes, {len(out['paths'])} paths)")


main()
