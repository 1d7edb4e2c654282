"""The ready-to-paste example call that `make dev` and `make deploy` print."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["example_call"]


def example_call(info: dict[str, Any], info_file: Path) -> str:
    """A ready-to-paste shell pipeline: fetch a token, then call the model with it.

    No secret ever appears in a process's arguments (where ``ps`` shows it to
    every user) nor in the shell's history: the client secret is read from
    ``info_file`` (dev.json or deploy.json) and the token passed on, both
    through pipes (``curl --data @-`` and ``-H @-`` read them from stdin).
    """
    target = info["gateway_url"]
    # Keycloak over HTTPS (a deployed site) has a certificate from the same site CA.
    token_url = str(info["keycloak"]["token_url"])
    cacert = f" --cacert {info['ca_file']}" if token_url.startswith("https:") else ""
    form = (
        "import json,sys,urllib.parse as u; c=json.load(open(sys.argv[1]))['clients'][0]; "
        "print(u.urlencode({'grant_type': 'client_credentials', "
        "'client_id': c['client_id'], 'client_secret': c['client_secret']}))"
    )
    header = (
        "import json,sys; print('Authorization: Bearer ' + json.load(sys.stdin)['access_token'])"
    )
    return "\n".join(
        [
            f'python3 -c "{form}" {info_file} \\',
            f"  | curl -s{cacert} {info['keycloak']['token_url']} --data @- \\",
            f'  | python3 -c "{header}" \\',
            f"  | curl -s --cacert {info['ca_file']} {target}/v1/chat/completions -H @- \\",
            '    -H "Content-Type: application/json" -H "X-Data-Classification: internal" \\',
            f'    -d \'{{"model": "{info["vllm"][0]["model"]}", '
            '"messages": [{"role": "user", "content": "Summarise the shift log"}], '
            '"max_tokens": 16}\'',
        ]
    )
