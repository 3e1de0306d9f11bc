"""A per-secret sync script, as a user would write it: for each target, for each secret,
read the source secret from Vault and write it to the target, one request at a time.

    per_secret.py VAULT_ADDR TOKEN PLAN.json

PLAN.json: [{"source": "<folder under secret/>", "target": "<folder>", "secrets": [names]}]
"""

import json
import sys
import urllib.request


def call(address, token, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{address}/v1/{path}", data=data, method=method)
    request.add_header("X-Vault-Token", token)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request) as response:
        text = response.read()
        return json.loads(text) if text else None


def main():
    address, token, plan_file = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(plan_file) as f:
        plan = json.load(f)
    for target in plan:
        for name in target["secrets"]:
            secret = call(address, token, "GET", f"secret/data/{target['source']}/{name}")
            call(address, token, "POST", f"secret/data/{target['target']}/{name}", {"data": secret["data"]["data"]})


if __name__ == "__main__":
    main()
