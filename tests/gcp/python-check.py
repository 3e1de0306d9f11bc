"""Cross-checks the GCP test server with Google's official Python client
(google-cloud-secret-manager, REST transport, no credentials): create a secret, add a
version with its CRC32C, access it, list secrets and versions, disable and destroy a
version, and see the errors the client maps to its exceptions. Run by
tests/it/gcp.rs with the server's address."""

import sys

from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager



def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as Secret Manager's `data_crc32c`."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


url = sys.argv[1]
client = secretmanager.SecretManagerServiceClient(
    transport="rest",
    credentials=AnonymousCredentials(),
    client_options=ClientOptions(api_endpoint=url),
)
parent = "projects/py-proj"
secret = client.create_secret(
    request={
        "parent": parent,
        "secret_id": "py-app--db",
        "secret": {"replication": {"automatic": {}}, "labels": {"team": "python"}},
    }
)
assert secret.name.endswith("/secrets/py-app--db"), secret.name
assert secret.labels["team"] == "python"
data = b'{"password":"from-python"}'
version = client.add_secret_version(
    request={"parent": secret.name, "payload": {"data": data, "data_crc32c": crc32c(data)}}
)
assert version.name.endswith("/versions/1"), version.name
answer = client.access_secret_version(request={"name": f"{secret.name}/versions/latest"})
assert answer.payload.data == data
assert answer.payload.data_crc32c == crc32c(data)
names = [s.name for s in client.list_secrets(request={"parent": parent, "page_size": 1})]
assert len(names) == 1 and names[0].endswith("py-app--db"), names

# A second version, the first disabled then destroyed: listing shows their states.
client.add_secret_version(request={"parent": secret.name, "payload": {"data": b"{}"}})
client.disable_secret_version(request={"name": f"{secret.name}/versions/1"})
client.destroy_secret_version(request={"name": f"{secret.name}/versions/1"})
states = {v.name.rsplit("/", 1)[1]: v.state.name for v in client.list_secret_versions(request={"parent": secret.name})}
assert states == {"1": "DESTROYED", "2": "ENABLED"}, states
client.add_secret_version(request={"parent": secret.name, "payload": {"data": data}})

try:
    client.create_secret(
        request={"parent": parent, "secret_id": "py-app--db", "secret": {"replication": {"automatic": {}}}}
    )
    raise AssertionError("a second create must fail")
except exceptions.Conflict:  # 409 ALREADY_EXISTS
    pass
try:
    client.access_secret_version(request={"name": f"{parent}/secrets/missing/versions/latest"})
    raise AssertionError("a missing secret must fail")
except exceptions.NotFound:
    pass
print("ok")
