// Cross-checks the GitHub test server with GitHub's official client, Octokit, and
// libsodium (the sealing GitHub's docs use). Run by tests/it/github.rs with the packages
// tests/servers.sh installs: `node --input-type=module` in that folder, this file on stdin.
// Arguments come in the environment: GH_URL, GH_TOKEN. Prints one JSON object.
import { Octokit } from "@octokit/rest";
import sodium from "libsodium-wrappers";

const octokit = new Octokit({ baseUrl: process.env.GH_URL, auth: process.env.GH_TOKEN });
const [owner, repo] = ["acme", "app"];
await sodium.ready;

// Seal and write three secrets the way GitHub's documentation shows.
const { data: key } = await octokit.rest.actions.getRepoPublicKey({ owner, repo });
for (const [name, value] of [["ALPHA", "a-value"], ["BETA", "b-value"], ["GAMMA", "g-value"]]) {
  const sealed = sodium.crypto_box_seal(
    sodium.from_string(value),
    sodium.from_base64(key.key, sodium.base64_variants.ORIGINAL),
  );
  await octokit.rest.actions.createOrUpdateRepoSecret({
    owner,
    repo,
    secret_name: name,
    encrypted_value: sodium.to_base64(sealed, sodium.base64_variants.ORIGINAL),
    key_id: key.key_id,
  });
}
// Page through them two at a time, following the Link header.
const secrets = await octokit.paginate(octokit.rest.actions.listRepoSecrets, { owner, repo, per_page: 2 });
// A variable, as vss's ledger is kept.
await octokit.rest.actions.createRepoVariable({ owner, repo, name: "NOTE", value: "v1" });
await octokit.rest.actions.updateRepoVariable({ owner, repo, name: "NOTE", value: "v2" });
const { data: variable } = await octokit.rest.actions.getRepoVariable({ owner, repo, name: "NOTE" });
// A missing secret is a 404 Octokit understands.
let missing = null;
try {
  await octokit.rest.actions.getRepoSecret({ owner, repo, secret_name: "NOPE" });
} catch (error) {
  missing = error.status;
}
await octokit.rest.actions.deleteRepoSecret({ owner, repo, secret_name: "GAMMA" });
const { data: after } = await octokit.rest.actions.listRepoSecrets({ owner, repo });
console.log(JSON.stringify({
  listed: secrets.map((s) => s.name),
  variable: variable.value,
  missing,
  after: after.secrets.map((s) => s.name),
  total: after.total_count,
}));
