"""The development stack (``make dev``): real OPA, Keycloak and vLLM on loopback, gateway in front.

``stack`` is ``make dev`` and ``make dev-down``; ``realm`` renders the demo
realm and its clients; ``gatewaysetup`` makes the gateway's CA, keys and
configuration. The components themselves are fetched and described in
``sovstack.components`` and started by ``sovstack.core.services``; the pytest
fixtures start the same components the same way. Only ``cli`` and ``bench``
import this package.
"""
