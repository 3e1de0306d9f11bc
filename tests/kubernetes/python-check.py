"""Cross-checks the loopback kube-apiserver test server with the official Kubernetes
Python client (PyPI `kubernetes`), which is generated from the same OpenAPI document.

    python-check.py KUBECONFIG          # the checks; leaves Secret `py-db` (label from=python)
    python-check.py KUBECONFIG read     # prints Secret `app-db`'s password, manager, target

Every call goes through the client's own models and REST layer; a request the server
refused as off-contract would surface as an ApiException here (and in its `rejected` list).
"""

import base64
import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException

NS = "py"


def b64(text):
    return base64.b64encode(text.encode()).decode()


def text(data, key):
    return base64.b64decode(data[key]).decode()


def expect_status(status, call):
    try:
        call()
    except ApiException as e:
        assert e.status == status, f"expected {status}, got {e.status}: {e.body}"
        return e
    raise AssertionError(f"expected {status}, the call succeeded")


def main():
    config.load_kube_config(config_file=sys.argv[1])
    v1 = client.CoreV1Api()
    if sys.argv[2:] == ["read"]:
        secret = v1.read_namespaced_secret("app-db", NS)
        managed = secret.metadata.labels["app.kubernetes.io/managed-by"]
        print(text(secret.data, "password"), managed, secret.metadata.annotations["vss.dev/target"])
        return

    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name="py-db", labels={"from": "python"}),
        string_data={"password": "from-python", "user": "py"},
        type="Opaque",
    )
    created = v1.create_namespaced_secret(NS, body)
    assert text(created.data, "password") == "from-python", created.data
    assert created.string_data is None, "stringData is never returned"
    assert created.metadata.resource_version and created.metadata.uid
    assert created.metadata.managed_fields[0].operation == "Update"

    # AlreadyExists, NotFound, an invalid name.
    e = expect_status(409, lambda: v1.create_namespaced_secret(NS, body))
    assert '"reason":"AlreadyExists"' in e.body.replace(" ", ""), e.body
    expect_status(404, lambda: v1.read_namespaced_secret("missing", NS))
    bad = client.V1Secret(metadata=client.V1ObjectMeta(name="Bad_Name"), data={"k": b64("v")})
    e = expect_status(422, lambda: v1.create_namespaced_secret(NS, bad))
    assert "RFC 1123" in e.body, e.body

    # A strategic merge patch changes one key and keeps the others.
    patched = v1.patch_namespaced_secret("py-db", NS, {"data": {"password": b64("from-python-2")}})
    assert text(patched.data, "password") == "from-python-2" and text(patched.data, "user") == "py"
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)

    # A replace with a stale resourceVersion is a conflict; with the current one it works.
    stale = client.V1Secret(
        metadata=client.V1ObjectMeta(name="py-db", resource_version=created.metadata.resource_version,
                                     labels={"from": "python"}),
        data=patched.data,
    )
    expect_status(409, lambda: v1.replace_namespaced_secret("py-db", NS, stale))
    stale.metadata.resource_version = patched.metadata.resource_version
    replaced = v1.replace_namespaced_secret("py-db", NS, stale)
    assert text(replaced.data, "password") == "from-python-2"

    # Paging by limit and continue, filtered by a label selector.
    for i in range(3):
        v1.create_namespaced_secret(NS, client.V1Secret(
            metadata=client.V1ObjectMeta(name=f"page-{i}", labels={"paged": "yes"}), data={"k": b64(str(i))}))
    names, token = [], None
    while True:
        page = v1.list_namespaced_secret(NS, label_selector="paged=yes", limit=2, _continue=token)
        names += [s.metadata.name for s in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert names == ["page-0", "page-1", "page-2"], names

    # Deletes: a precondition that no longer holds is a conflict; then it goes.
    stale_delete = client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version="1"))
    expect_status(409, lambda: v1.delete_namespaced_secret("page-0", NS, body=stale_delete))
    for i in range(3):
        status = v1.delete_namespaced_secret(f"page-{i}", NS)
        # The client types the answer loosely (a Status or the object): as a dict here.
        status = status if isinstance(status, dict) else status.to_dict()
        assert status["status"] == "Success" and status["details"]["name"] == f"page-{i}", status
    assert [s.metadata.name for s in v1.list_namespaced_secret(NS).items] == ["py-db"]

    # An immutable Secret's data cannot change.
    v1.create_namespaced_secret(NS, client.V1Secret(
        metadata=client.V1ObjectMeta(name="frozen"), data={"k": b64("v")}, immutable=True))
    e = expect_status(422, lambda: v1.patch_namespaced_secret("frozen", NS, {"data": {"k": b64("w")}}))
    assert "field is immutable" in e.body, e.body
    v1.delete_namespaced_secret("frozen", NS)
    print("ok")


if __name__ == "__main__":
    main()
