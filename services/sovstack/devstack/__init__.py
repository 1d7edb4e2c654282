"""The development stack: real OPA, Keycloak and vLLM on loopback.

``deps`` fetches each component into the project's ignored cache at a pinned
version; ``components`` says how each one starts and when it is ready;
``process`` starts, watches and stops processes; ``stack`` is ``make dev`` and
``make dev-down``. The pytest fixtures start the same components the same way.
"""
